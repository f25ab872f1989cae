/**
 * Compile-time bookkeeping of named results: which `$name` references a step's SQL makes (read from the
 * string literal's type) and which names the steps before it bind with `.as(name)`.
 *
 * Limits: only string literals are read (a `string` variable references nothing as far as the types
 * know); `$tag$` dollar quoting looks like a reference to `tag` (use `.unchecked()`); names are not
 * scoped the way the engine scopes loop iterations.
 */

type Lower = 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g' | 'h' | 'i' | 'j' | 'k' | 'l' | 'm' | 'n' | 'o' | 'p' | 'q' | 'r' | 's' | 't' | 'u' | 'v' | 'w' | 'x' | 'y' | 'z';
type IdStart = Lower | Uppercase<Lower> | '_';
type IdChar = IdStart | '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9';

type TakeIdRest<S extends string, Acc extends string> = S extends `${infer C}${infer R}` ? (C extends IdChar ? TakeIdRest<R, `${Acc}${C}`> : Acc) : Acc;
type TakeId<S extends string> = S extends `${infer C}${infer R}` ? (C extends IdStart ? TakeIdRest<R, C> : never) : never;

/** The names `$name` references in a SQL string literal type (never for a plain `string`). */
export type RefsIn<S extends string, Acc extends string = never> = string extends S
  ? never
  : S extends `${string}$${infer Rest}`
    ? RefsIn<Rest, Acc | TakeId<Rest>>
    : Acc;

/** A valid result name ([A-Za-z_][A-Za-z0-9_]*) as a type: literals that are not one become `never`. */
export type Identifier<N extends string> = string extends N ? N : N extends `${infer C}${infer R}` ? (C extends IdStart ? (TakeIdRest<R, C> extends N ? N : never) : never) : never;

/** Shown in place of a step whose SQL references names nothing before it binds. */
export interface Unbound<Names extends string> {
  readonly 'unbound named results (bind them with .as(name) earlier, or call .unchecked())': Names;
}
