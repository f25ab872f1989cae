-- 0003_operators: the DSL operators (SPEC §2.1), created in the operator schema (the migrator replaces
-- the placeholder with the quoted schema name, default "public") so they resolve from the default
-- search_path. All seven are "other operators" to the parser: one precedence level shared with || and
-- ->>, left-associative; ::, *, +, - bind tighter; comparison, IS, AND, OR bind looser. With two
-- unknown-typed literals ('a' & 'b', 'a' | 'b') PostgreSQL prefers these text versions.

-- a ~> b: run a, then b (THEN).
CREATE OPERATOR @operator_schema@.~> (LEFTARG = text, RIGHTARG = text, FUNCTION = df.seq);

-- fut |=> 'name': store fut's result as $name.
CREATE OPERATOR @operator_schema@.|=> (LEFTARG = text, RIGHTARG = text, FUNCTION = df.as_op);

-- a & b: run both in parallel, wait for both (JOIN).
CREATE OPERATOR @operator_schema@.& (LEFTARG = text, RIGHTARG = text, FUNCTION = df."join");

-- a | b: run both in parallel, first to finish decides (RACE).
CREATE OPERATOR @operator_schema@.| (LEFTARG = text, RIGHTARG = text, FUNCTION = df.race);

-- cond ?> then !> else: ?> builds a partial if, !> completes it into an IF node.
CREATE OPERATOR @operator_schema@.?> (LEFTARG = text, RIGHTARG = text, FUNCTION = df.if_then_op);
CREATE OPERATOR @operator_schema@.!> (LEFTARG = text, RIGHTARG = text, FUNCTION = df.if_else_op);

-- @> body: repeat body forever (prefix; binds to the next operand only, so write @> ( … )).
CREATE OPERATOR @operator_schema@.@> (RIGHTARG = text, FUNCTION = df.loop_prefix_op);
