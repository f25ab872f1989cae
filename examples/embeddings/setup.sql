-- Embedding pipeline example: documents whose embeddings are filled in by a workflow.
-- Uses pgvector's `vector` type when the server has the extension, a `real[]` column otherwise.
-- Idempotent: safe to run again.

CREATE SCHEMA IF NOT EXISTS emb;

DO $$
BEGIN
    IF to_regclass('emb.docs') IS NOT NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE emb.docs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL, embedding vector);
        -- jsonb array of numbers → the column's type
        CREATE FUNCTION emb.to_embedding(j jsonb) RETURNS vector LANGUAGE sql IMMUTABLE AS 'SELECT j::text::vector';
    ELSE
        CREATE TABLE emb.docs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL, embedding real[]);
        CREATE FUNCTION emb.to_embedding(j jsonb) RETURNS real[] LANGUAGE sql IMMUTABLE
            AS 'SELECT array_agg(x::real ORDER BY o) FROM jsonb_array_elements_text(j) WITH ORDINALITY AS a(x, o)';
    END IF;
    CREATE INDEX docs_missing_idx ON emb.docs (id) WHERE embedding IS NULL;
END
$$;

-- The parsed body of a 2xx HTTP step result; anything else fails the step (and so the loop) loudly
-- instead of retrying the same batch forever. 5xx never gets here: the HTTP step itself fails and retries.
CREATE OR REPLACE FUNCTION emb.expect_ok(response jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF NOT coalesce((response ->> 'ok')::boolean, false) THEN
        RAISE EXCEPTION 'embeddings API answered HTTP %: %', response ->> 'status', left(response ->> 'body', 300);
    END IF;
    RETURN (response ->> 'body')::jsonb;
END
$$;
