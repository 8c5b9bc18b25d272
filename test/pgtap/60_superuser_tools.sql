-- Tools a superuser could reach for that bypass SQL: pg_surgery deletes or
-- freezes heap tuples without the executor.  It cannot be installed while
-- tables are protected, and tables cannot be protected while it is there.
BEGIN;
SELECT plan(7);

CREATE TABLE public.st_audit (id int PRIMARY KEY, who text NOT NULL);
INSERT INTO public.st_audit VALUES (1, 'alice'), (2, 'bob');

-- pg_surgery first: protect() refuses.
CREATE EXTENSION pg_surgery;
SELECT throws_ok($$SELECT hipaa_audit.protect('public.st_audit')$$,
    '55000', 'cannot protect tables while extension pg_surgery is installed',
    'protect() refuses while pg_surgery is installed');
SELECT ok(NOT hipaa_audit.is_protected('public.st_audit'), 'nothing was registered');
DROP EXTENSION pg_surgery;

-- Protected first: CREATE EXTENSION pg_surgery is refused.
SELECT lives_ok($$SELECT hipaa_audit.protect('public.st_audit')$$, 'protect() works without pg_surgery');
SELECT throws_ok('CREATE EXTENSION pg_surgery',
    '42501', 'cannot CREATE EXTENSION pg_surgery while tables are protected',
    'pg_surgery cannot be installed while a table is protected');
SELECT is((SELECT count(*)::int FROM pg_extension WHERE extname = 'pg_surgery'), 0,
    'pg_surgery is not installed');

-- Another extension's install script gets no free pass (see 10_dml.sql for
-- the event-trigger case): a plain CREATE EXTENSION still works.
SELECT lives_ok('CREATE EXTENSION tsm_system_rows', 'unrelated extensions install normally');
SELECT results_eq('SELECT id, who FROM public.st_audit ORDER BY id',
    $$VALUES (1, 'alice'), (2, 'bob')$$, 'rows unchanged');

SELECT * FROM finish();
ROLLBACK;
