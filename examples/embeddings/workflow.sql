-- The embedding pipeline as a named workflow. Input:
--   {"url": "<embeddings endpoint>", "model": "<model>", "batch": 16}
-- An API key, if the endpoint needs one, is a df variable captured at start:
--   SELECT df.setvar('embedding_api_key', 'sk-…');   -- then {embedding_api_key} in the header
-- Loop: take the next batch of documents without an embedding; stop when there is none; otherwise call the
-- API (retried with backoff on 5xx and transport errors, with the same Idempotency-Key), store the vectors.
-- Every step is checkpointed: a crash between the call and the UPDATE re-runs only what did not commit.
SELECT df.define_workflow('embed-docs',
       ('SELECT count(*) AS todo FROM emb.docs WHERE embedding IS NULL' |=> 'todo')
    ~> df.loop(
           ('SELECT jsonb_build_object(''model'', coalesce($input::jsonb ->> ''model'', ''text-embedding-3-small''),
                                       ''input'', jsonb_agg(body ORDER BY id)) AS request,
                    jsonb_agg(id ORDER BY id) AS ids
               FROM (SELECT id, body FROM emb.docs WHERE embedding IS NULL ORDER BY id
                      LIMIT coalesce(($input::jsonb ->> ''batch'')::int, 16)) b
             HAVING count(*) > 0' |=> 'batch')
        ~> df.if_rows('batch',
               (df.retry(df.http('$input.url', 'POST', '$batch.request',
                                 '{"Content-Type": "application/json", "Authorization": "Bearer {embedding_api_key}"}', 60),
                         5, 1, 30) |=> 'response')
            ~> 'UPDATE emb.docs d SET embedding = emb.to_embedding(e.value -> ''embedding'')
                  FROM jsonb_array_elements(emb.expect_ok($response::jsonb) -> ''data'') e
                 WHERE d.id = ($batch.ids::jsonb ->> (e.value ->> ''index'')::int)::bigint
                   AND d.embedding IS NULL',
               df.break('done'))),
    'Fill emb.docs.embedding in batches from an embeddings API');
