-- What protect() refuses because the hash could not be pinned (security
-- issue 11, class 4: what verify() would trust that a superuser can change
-- without touching a row).  The built-in send functions themselves are
-- pinned in the extension; TAP 023 replays the attack on them, which needs
-- the library unloaded.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE SCHEMA regress_pin;
SET search_path = regress_pin, public;
RESET client_min_messages;

-- Each refusal as SQLSTATE, message, detail and hint.
CREATE FUNCTION regress_pin.refusal(stmt text)
RETURNS TABLE (state text, message text, detail text, hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    state := 'no error';
    RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN NEXT;
END $$;
\x on

-- 1. A base type defined outside PostgreSQL's core is hashed through its
-- own send function, which a superuser can replace: refused, also behind
-- a domain, and when added to a protected table.
CREATE TYPE regress_pin.mytext;
SET client_min_messages = warning;	-- the shell-type notices differ by version
CREATE FUNCTION regress_pin.mytext_in(cstring) RETURNS regress_pin.mytext
    LANGUAGE internal IMMUTABLE STRICT AS 'textin';
CREATE FUNCTION regress_pin.mytext_out(regress_pin.mytext) RETURNS cstring
    LANGUAGE internal IMMUTABLE STRICT AS 'textout';
CREATE FUNCTION regress_pin.mytext_send(regress_pin.mytext) RETURNS bytea
    LANGUAGE internal IMMUTABLE STRICT AS 'textsend';
RESET client_min_messages;
CREATE TYPE regress_pin.mytext (INPUT = regress_pin.mytext_in,
    OUTPUT = regress_pin.mytext_out, SEND = regress_pin.mytext_send, LIKE = text);
CREATE DOMAIN regress_pin.mytext_dom AS regress_pin.mytext;
CREATE TABLE regress_pin.user_base (id int, v regress_pin.mytext);
SELECT * FROM regress_pin.refusal($$SELECT hipaa_audit.protect('regress_pin.user_base')$$);
CREATE TABLE regress_pin.user_base_dom (id int, v regress_pin.mytext_dom);
SELECT * FROM regress_pin.refusal($$SELECT hipaa_audit.protect('regress_pin.user_base_dom')$$);
CREATE EXTENSION citext SCHEMA regress_pin;
CREATE TABLE regress_pin.uses_citext (id int, email regress_pin.citext);
SELECT * FROM regress_pin.refusal($$SELECT hipaa_audit.protect('regress_pin.uses_citext')$$);
CREATE TABLE regress_pin.ok_table (id int, note text);
SELECT hipaa_audit.protect('regress_pin.ok_table');
SELECT * FROM regress_pin.refusal($$ALTER TABLE regress_pin.ok_table ADD COLUMN email regress_pin.citext$$);
SELECT count(*) AS citext_columns FROM pg_attribute
 WHERE attrelid = 'regress_pin.ok_table'::regclass AND atttypid = 'regress_pin.citext'::regtype;
-- Composite, enum and range types made of built-in types stay accepted:
-- the encoder writes their formats itself.
CREATE TYPE regress_pin.level AS ENUM ('low', 'high');
CREATE TYPE regress_pin.money_pair AS (amount numeric, currency text);
CREATE TYPE regress_pin.numspan AS RANGE (subtype = numeric);
CREATE TABLE regress_pin.structured (id int, lvl regress_pin.level,
    pair regress_pin.money_pair, span regress_pin.numspan, amounts numeric[]);
SELECT hipaa_audit.protect('regress_pin.structured');
INSERT INTO regress_pin.structured VALUES
    (1, 'high', ROW(12.50, 'EUR'), '[1.5,2.5)', '{1.0,NULL,NaN}');
SELECT ok, rows_checked FROM hipaa_audit.verify('regress_pin.structured');

-- 2. Large objects: the hash would cover the reference, not the content,
-- which lo_put() changes without touching the row.  A column of contrib
-- lo's domain "lo" (or a domain over it) is refused; a plain oid column is
-- hashed as the number it is (docs/encoding.md).
CREATE EXTENSION lo SCHEMA regress_pin;
CREATE DOMAIN regress_pin.scan_ref AS regress_pin.lo;
CREATE TABLE regress_pin.uses_lo (id int, scan regress_pin.lo);
SELECT * FROM regress_pin.refusal($$SELECT hipaa_audit.protect('regress_pin.uses_lo')$$);
CREATE TABLE regress_pin.uses_lo_dom (id int, scan regress_pin.scan_ref);
SELECT * FROM regress_pin.refusal($$SELECT hipaa_audit.protect('regress_pin.uses_lo_dom')$$);
SELECT * FROM regress_pin.refusal($$ALTER TABLE regress_pin.ok_table ADD COLUMN scan regress_pin.lo$$);
CREATE TABLE regress_pin.uses_oid (id int, scan oid);
SELECT * FROM regress_pin.refusal($$SELECT hipaa_audit.protect('regress_pin.uses_oid')$$);

-- 3. Stored generated columns are not hashed.  One whose expression calls
-- a function that can be replaced (a user's function, a user's operator,
-- or a built-in written in SQL, such as lpad(text, int)) is refused; one
-- made of compiled-in functions only is accepted.
CREATE FUNCTION regress_pin.twice(int) RETURNS int
    LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE OPERATOR regress_pin.### (LEFTARG = int, RIGHTARG = int,
    FUNCTION = pg_catalog.int4pl);
CREATE FUNCTION regress_pin.plus(int, int) RETURNS int
    LANGUAGE sql IMMUTABLE AS 'SELECT $1 + $2';
CREATE OPERATOR regress_pin.#@# (LEFTARG = int, RIGHTARG = int,
    FUNCTION = regress_pin.plus);
CREATE TABLE regress_pin.gen_user_fn (id int,
    doubled int GENERATED ALWAYS AS (regress_pin.twice(id)) STORED);
SELECT * FROM regress_pin.refusal($$SELECT hipaa_audit.protect('regress_pin.gen_user_fn')$$);
CREATE TABLE regress_pin.gen_user_op (id int,
    bumped int GENERATED ALWAYS AS (id OPERATOR(regress_pin.#@#) 1) STORED);
SELECT * FROM regress_pin.refusal($$SELECT hipaa_audit.protect('regress_pin.gen_user_op')$$);
CREATE TABLE regress_pin.gen_sql_builtin (id int, note text,
    padded text GENERATED ALWAYS AS (lpad(note, 10)) STORED);
SELECT * FROM regress_pin.refusal($$SELECT hipaa_audit.protect('regress_pin.gen_sql_builtin')$$);
\x off
CREATE TABLE regress_pin.gen_builtin (id int, note text,
    tens int GENERATED ALWAYS AS (id * 10) STORED,
    shout text GENERATED ALWAYS AS (upper(note) || '!') STORED,
    summed int GENERATED ALWAYS AS (id OPERATOR(regress_pin.###) 1) STORED);
SELECT hipaa_audit.protect('regress_pin.gen_builtin');
INSERT INTO regress_pin.gen_builtin (id, note) VALUES (4, 'quiet');
SELECT id, tens, shout, summed FROM regress_pin.gen_builtin;
SELECT ok, rows_checked FROM hipaa_audit.verify('regress_pin.gen_builtin');
