//! A schema fingerprint read from pg_catalog, and a readable diff of two fingerprints.
//!
//! `check --verify` takes a [`Fingerprint`] of a scratch database before a migration's up, runs
//! up then down, takes another, and requires [`diff`] to be empty. A fingerprint maps every
//! catalog object outside the excluded schemas to a canonical description of its definition:
//! schemas, tables (kind, persistence, row level security, partitioning), columns, constraints,
//! indexes, views, materialized views, sequences, functions, procedures, aggregates, triggers,
//! types (enums, domains, composites, ranges, base types), extensions, policies, rules, event
//! triggers, grants, default privileges, comments, and operators, casts, collations,
//! statistics objects, foreign-data wrappers, servers, user mappings and publications.
//!
//! Descriptions hold only what a re-run of the same DDL reproduces: names (never OIDs, file
//! nodes or row counts) and the server's own deparsed text (`pg_get_expr`, `pg_get_indexdef`,
//! `pg_get_viewdef`, `pg_get_functiondef`, ...). So a dropped and recreated table fingerprints
//! like the original, and a sequence's current value, which rows inserted and deleted again
//! advance, is not part of it. Objects that belong to an extension are covered by the
//! extension's name and version, not listed one by one; an identity column's sequence is part
//! of the column.
//!
//! [`Fingerprint::take`] is one round trip: a single simple-protocol batch that pins the
//! settings the deparsed text depends on (`search_path` above all), runs one `UNION ALL`
//! query, and restores the caller's settings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use postgres::{GenericClient, SimpleQueryMessage};

/// An object's identity in a fingerprint: its kind (`table`, `column`, `index`, ...) and its
/// qualified name (`public.orders`, `public.orders.status`, `orders_pkey on public.orders`).
pub(crate) type ObjectKey = (String, String);

/// Separates `name=value` attributes in the query's definition column (U+001F, which no
/// identifier or deparsed expression contains in practice).
const ATTRIBUTE_SEPARATOR: char = '\u{1f}';

/// The fingerprint query: one row per object, `(kind, name, definition, parent kind, parent
/// name)`. The definition is `name=value` attributes joined by [`ATTRIBUTE_SEPARATOR`]; the
/// parent is the object this one is part of (a column's table, a table's schema), used by
/// [`diff`] to report a table left behind once rather than with each of its columns.
///
/// `@EXCLUDED@` becomes a `text[]` literal of the caller's schemas. Catalog rows with an OID
/// below 16384 (`FirstNormalObjectId`) were made by initdb, never by a migration; filtering on
/// it keeps the scan of the large catalogs (operators, casts, comments) cheap. `deptype 'e'`
/// marks extension members, `deptype 'i'` objects that are internal parts of another (array
/// types, range constructors, identity sequences).
const QUERY: &str = r#"WITH
ns AS MATERIALIZED (
  SELECT n.oid, n.nspname, n.nspowner, n.nspacl, quote_ident(n.nspname) AS qname
  FROM pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_(toast|temp)'
    AND n.nspname <> ALL (@EXCLUDED@)
),
rel AS MATERIALIZED (
  SELECT c.oid, c.relkind, c.relowner, c.relacl, c.reloptions, c.relpersistence,
    c.relrowsecurity, c.relforcerowsecurity, c.relispartition, c.relpartbound, c.reltablespace,
    c.relreplident, c.reloftype, c.relam, c.relispopulated,
    ns.qname AS nsqname, ns.qname || '.' || quote_ident(c.relname) AS qname,
    CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'f' THEN 'foreign table'
      WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
      ELSE 'type' END AS kind
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'c')
    AND c.oid NOT IN (SELECT d.objid FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e')
),
fn AS MATERIALIZED (
  SELECT p.oid, p.prokind, p.proowner, p.proacl, p.oid::regprocedure::text AS qname,
    ns.qname AS nsqname,
    CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END AS kind
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype IN ('e', 'i'))
),
ty AS MATERIALIZED (
  SELECT t.oid, t.typtype, t.typowner, t.typacl, t.typbasetype, t.typtypmod, t.typdefaultbin,
    t.typnotnull, t.typcollation, t.typrelid, t.typinput, t.typoutput, t.typreceive, t.typsend,
    t.typlen, t.typbyval, t.typalign, t.typstorage, t.typcategory, t.typelem,
    ns.qname || '.' || quote_ident(t.typname) AS qname, ns.qname AS nsqname
  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
  WHERE t.typtype <> 'm'
    AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype IN ('e', 'i'))
),
acl_obj AS (
  SELECT 'schema ' || ns.qname AS obj, 'schema' AS pkind, ns.qname AS pname, ns.nspacl AS acl,
    acldefault('n', ns.nspowner) AS dflt
  FROM ns WHERE ns.nspacl IS NOT NULL
  UNION ALL
  SELECT rel.kind || ' ' || rel.qname, rel.kind, rel.qname, rel.relacl,
    acldefault(CASE rel.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", rel.relowner)
  FROM rel WHERE rel.relacl IS NOT NULL AND rel.relkind <> 'c'
  UNION ALL
  SELECT 'column ' || rel.qname || '.' || quote_ident(a.attname), 'column',
    rel.qname || '.' || quote_ident(a.attname), a.attacl, acldefault('c', rel.relowner)
  FROM pg_attribute a JOIN rel ON rel.oid = a.attrelid
  WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT fn.kind || ' ' || fn.qname, fn.kind, fn.qname, fn.proacl, acldefault('f', fn.proowner)
  FROM fn WHERE fn.proacl IS NOT NULL
  UNION ALL
  SELECT 'type ' || ty.qname, 'type', ty.qname, ty.typacl, acldefault('T', ty.typowner)
  FROM ty WHERE ty.typacl IS NOT NULL
),
other AS (
  SELECT 'pg_operator'::regclass AS cls, o.oid, o.oprnamespace AS nsp,
    'function=' || o.oprcode::oid::regprocedure::text AS def, NULL::text AS pkind, NULL::text AS pname
  FROM pg_operator o WHERE o.oid >= 16384
  UNION ALL
  SELECT 'pg_opclass'::regclass, o.oid, o.opcnamespace, '', NULL, NULL FROM pg_opclass o WHERE o.oid >= 16384
  UNION ALL
  SELECT 'pg_opfamily'::regclass, o.oid, o.opfnamespace, '', NULL, NULL FROM pg_opfamily o WHERE o.oid >= 16384
  UNION ALL
  SELECT 'pg_cast'::regclass, c.oid, NULL, concat_ws(E'\x1f',
      'function=' || CASE WHEN c.castfunc <> 0 THEN c.castfunc::regprocedure::text END,
      'context=' || CASE c.castcontext WHEN 'e' THEN 'explicit' WHEN 'a' THEN 'assignment' ELSE 'implicit' END,
      'method=' || CASE c.castmethod WHEN 'f' THEN 'function' WHEN 'i' THEN 'inout' ELSE 'binary' END), NULL, NULL
  FROM pg_cast c WHERE c.oid >= 16384
  UNION ALL
  SELECT 'pg_collation'::regclass, c.oid, c.collnamespace,
    'definition=' || (to_jsonb(c) - ARRAY['oid', 'collname', 'collnamespace', 'collowner', 'collversion'])::text, NULL, NULL
  FROM pg_collation c WHERE c.oid >= 16384
  UNION ALL
  SELECT 'pg_conversion'::regclass, c.oid, c.connamespace, '', NULL, NULL FROM pg_conversion c WHERE c.oid >= 16384
  UNION ALL
  SELECT 'pg_ts_config'::regclass, c.oid, c.cfgnamespace, '', NULL, NULL FROM pg_ts_config c WHERE c.oid >= 16384
  UNION ALL
  SELECT 'pg_ts_dict'::regclass, d.oid, d.dictnamespace, concat_ws(E'\x1f', 'options=' || d.dictinitoption), NULL, NULL
  FROM pg_ts_dict d WHERE d.oid >= 16384
  UNION ALL
  SELECT 'pg_ts_parser'::regclass, p.oid, p.prsnamespace, '', NULL, NULL FROM pg_ts_parser p WHERE p.oid >= 16384
  UNION ALL
  SELECT 'pg_ts_template'::regclass, t.oid, t.tmplnamespace, '', NULL, NULL FROM pg_ts_template t WHERE t.oid >= 16384
  UNION ALL
  SELECT 'pg_statistic_ext'::regclass, s.oid, s.stxnamespace,
    'definition=' || pg_get_statisticsobjdef(s.oid), rel.kind, rel.qname
  FROM pg_statistic_ext s LEFT JOIN rel ON rel.oid = s.stxrelid
  UNION ALL
  SELECT 'pg_foreign_data_wrapper'::regclass, w.oid, NULL, concat_ws(E'\x1f',
      'handler=' || CASE WHEN w.fdwhandler <> 0 THEN w.fdwhandler::regprocedure::text END,
      'validator=' || CASE WHEN w.fdwvalidator <> 0 THEN w.fdwvalidator::regprocedure::text END,
      'options=' || array_to_string(w.fdwoptions, ', '),
      'owner=' || pg_get_userbyid(w.fdwowner)), NULL, NULL
  FROM pg_foreign_data_wrapper w
  UNION ALL
  SELECT 'pg_foreign_server'::regclass, s.oid, NULL, concat_ws(E'\x1f',
      'wrapper=' || (SELECT quote_ident(w.fdwname) FROM pg_foreign_data_wrapper w WHERE w.oid = s.srvfdw),
      'type=' || s.srvtype, 'version=' || s.srvversion,
      'options=' || array_to_string(s.srvoptions, ', '),
      'owner=' || pg_get_userbyid(s.srvowner)), NULL, NULL
  FROM pg_foreign_server s
  UNION ALL
  -- The pg_user_mappings view, not the table: any role may read it (deployments run as the
  -- schema's owner, rarely a superuser), and `umid` is the mapping's OID.
  SELECT 'pg_user_mapping'::regclass, u.umid, NULL, '', NULL, NULL FROM pg_user_mappings u
  UNION ALL
  SELECT 'pg_publication'::regclass, p.oid, NULL, concat_ws(E'\x1f',
      'definition=' || (to_jsonb(p) - ARRAY['oid', 'pubname', 'pubowner'])::text,
      'owner=' || pg_get_userbyid(p.pubowner),
      'tables=' || (SELECT string_agg(r.prrelid::regclass::text, ', ' ORDER BY 1)
                    FROM pg_publication_rel r WHERE r.prpubid = p.oid)), NULL, NULL
  FROM pg_publication p
  UNION ALL
  SELECT 'pg_transform'::regclass, t.oid, NULL, '', NULL, NULL FROM pg_transform t WHERE t.oid >= 16384
  UNION ALL
  SELECT 'pg_am'::regclass, a.oid, NULL, concat_ws(E'\x1f', 'type=' || a.amtype::text,
      'handler=' || a.amhandler::oid::regprocedure::text), NULL, NULL
  FROM pg_am a WHERE a.oid >= 16384
  UNION ALL
  SELECT 'pg_language'::regclass, l.oid, NULL, concat_ws(E'\x1f', 'trusted=' || l.lanpltrusted,
      'owner=' || pg_get_userbyid(l.lanowner)), NULL, NULL
  FROM pg_language l WHERE l.oid >= 16384
)
-- schemas
SELECT 'schema', ns.qname, 'owner=' || pg_get_userbyid(ns.nspowner), NULL, NULL
FROM ns
WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                    AND d.objid = ns.oid AND d.deptype = 'e')
UNION ALL
-- tables, partitioned tables, foreign tables
SELECT rel.kind, rel.qname, concat_ws(E'\x1f',
    'kind=' || CASE rel.relkind WHEN 'p' THEN 'partitioned' WHEN 'f' THEN 'foreign' ELSE 'ordinary' END,
    'persistence=' || CASE rel.relpersistence WHEN 'u' THEN 'unlogged' ELSE 'logged' END,
    'row level security=' || CASE WHEN rel.relrowsecurity AND rel.relforcerowsecurity THEN 'enabled, forced'
      WHEN rel.relrowsecurity THEN 'enabled' WHEN rel.relforcerowsecurity THEN 'disabled, forced'
      ELSE 'disabled' END,
    'owner=' || pg_get_userbyid(rel.relowner),
    'partition key=' || CASE WHEN rel.relkind = 'p' THEN pg_get_partkeydef(rel.oid) END,
    'partition of=' || CASE WHEN rel.relispartition THEN
      (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = rel.oid)
      || ' ' || pg_get_expr(rel.relpartbound, rel.oid) END,
    'inherits=' || CASE WHEN NOT rel.relispartition THEN
      (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno)
       FROM pg_inherits i WHERE i.inhrelid = rel.oid) END,
    'of type=' || CASE WHEN rel.reloftype <> 0 THEN format_type(rel.reloftype, NULL) END,
    'options=' || array_to_string(rel.reloptions, ', '),
    'tablespace=' || CASE WHEN rel.reltablespace <> 0 THEN
      (SELECT quote_ident(s.spcname) FROM pg_tablespace s WHERE s.oid = rel.reltablespace) END,
    'access method=' || CASE WHEN rel.relam <> 0 THEN
      (SELECT quote_ident(a.amname) FROM pg_am a WHERE a.oid = rel.relam) END,
    'replica identity=' || CASE rel.relreplident WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full'
      WHEN 'i' THEN 'index' ELSE 'default' END,
    'server=' || CASE WHEN rel.relkind = 'f' THEN
      (SELECT quote_ident(s.srvname) || coalesce(' options ' || array_to_string(f.ftoptions, ', '), '')
       FROM pg_foreign_table f JOIN pg_foreign_server s ON s.oid = f.ftserver
       WHERE f.ftrelid = rel.oid) END),
  'schema', rel.nsqname
FROM rel WHERE rel.relkind IN ('r', 'p', 'f')
UNION ALL
-- columns of tables
SELECT 'column', rel.qname || '.' || quote_ident(a.attname), concat_ws(E'\x1f',
    'position=' || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
    'type=' || format_type(a.atttypid, a.atttypmod),
    'not null=' || a.attnotnull,
    'default=' || CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
    'generated=' || CASE WHEN a.attgenerated <> '' THEN 'always as (' || pg_get_expr(ad.adbin, ad.adrelid)
      || CASE a.attgenerated WHEN 's' THEN ') stored' ELSE ') virtual' END END,
    'identity=' || CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
    'identity sequence=' || CASE WHEN a.attidentity <> '' THEN
      (SELECT concat_ws(' ', d.objid::regclass::text, format_type(s.seqtypid, NULL),
         'start ' || s.seqstart, 'increment ' || s.seqincrement, 'min ' || s.seqmin,
         'max ' || s.seqmax, 'cache ' || s.seqcache, CASE WHEN s.seqcycle THEN 'cycle' END)
       FROM pg_depend d CROSS JOIN LATERAL (SELECT * FROM pg_sequence s
                                            WHERE s.seqrelid = d.objid OFFSET 0) s
       WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = a.attrelid
         AND d.refobjsubid = a.attnum AND d.classid = 'pg_class'::regclass AND d.deptype = 'i') END,
    'collation=' || CASE WHEN a.attcollation <> t.typcollation THEN
      (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
       FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
       WHERE co.oid = a.attcollation) END,
    'storage=' || CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'plain'
      WHEN 'e' THEN 'external' WHEN 'm' THEN 'main' ELSE 'extended' END END,
    'options=' || array_to_string(a.attoptions, ', '),
    'fdw options=' || array_to_string(a.attfdwoptions, ', ')),
  rel.kind, rel.qname
FROM rel
JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE rel.relkind IN ('r', 'p', 'f')
UNION ALL
-- table constraints (NOT NULL is a column attribute)
SELECT 'constraint', quote_ident(c.conname) || ' on ' || rel.qname,
  'definition=' || pg_get_constraintdef(c.oid), rel.kind, rel.qname
FROM rel JOIN pg_constraint c ON c.conrelid = rel.oid
WHERE rel.relkind IN ('r', 'p', 'f') AND c.contype <> 'n'
UNION ALL
-- indexes, except those a constraint owns
SELECT 'index', rel.nsqname || '.' || quote_ident(ic.relname), concat_ws(E'\x1f',
    'definition=' || pg_get_indexdef(i.indexrelid),
    'clustered=' || NULLIF(i.indisclustered, false),
    'valid=' || NULLIF(i.indisvalid, true),
    'replica identity=' || NULLIF(i.indisreplident, false),
    'tablespace=' || CASE WHEN ic.reltablespace <> 0 THEN
      (SELECT quote_ident(s.spcname) FROM pg_tablespace s WHERE s.oid = ic.reltablespace) END),
  rel.kind, rel.qname
FROM rel JOIN pg_index i ON i.indrelid = rel.oid JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conrelid = i.indrelid
                    AND c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
UNION ALL
-- views and materialized views [kinds: view, materialized view]
SELECT rel.kind, rel.qname, concat_ws(E'\x1f',
    'definition=' || pg_get_viewdef(rel.oid),
    'options=' || array_to_string(rel.reloptions, ', '),
    'owner=' || pg_get_userbyid(rel.relowner),
    'populated=' || CASE WHEN rel.relkind = 'm' THEN rel.relispopulated END,
    'tablespace=' || CASE WHEN rel.reltablespace <> 0 THEN
      (SELECT quote_ident(s.spcname) FROM pg_tablespace s WHERE s.oid = rel.reltablespace) END),
  'schema', rel.nsqname
FROM rel WHERE rel.relkind IN ('v', 'm')
UNION ALL
-- sequences (not the current value; an identity sequence is part of its column)
SELECT 'sequence', rel.qname, concat_ws(E'\x1f',
    'type=' || format_type(s.seqtypid, NULL), 'start=' || s.seqstart,
    'increment=' || s.seqincrement, 'min=' || s.seqmin, 'max=' || s.seqmax,
    'cache=' || s.seqcache, 'cycle=' || s.seqcycle,
    'persistence=' || CASE rel.relpersistence WHEN 'u' THEN 'unlogged' ELSE 'logged' END,
    'owner=' || pg_get_userbyid(rel.relowner),
    'owned by=' || o.col),
  COALESCE(o.pkind, 'schema'), COALESCE(o.pname, rel.nsqname)
FROM rel JOIN pg_sequence s ON s.seqrelid = rel.oid
LEFT JOIN LATERAL (
  SELECT CASE oc.relkind WHEN 'f' THEN 'foreign table' ELSE 'table' END AS pkind,
    d.refobjid::regclass::text AS pname,
    d.refobjid::regclass::text || '.' || quote_ident(a.attname) AS col
  FROM pg_depend d JOIN pg_class oc ON oc.oid = d.refobjid
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  WHERE d.classid = 'pg_class'::regclass AND d.objid = rel.oid
    AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a' AND d.refobjsubid > 0
) o ON true
WHERE rel.relkind = 'S'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = rel.oid AND d.deptype = 'i')
UNION ALL
-- functions, procedures, aggregates
SELECT fn.kind, fn.qname, concat_ws(E'\x1f',
    'definition=' || CASE WHEN fn.prokind <> 'a' THEN pg_get_functiondef(fn.oid) END,
    'owner=' || pg_get_userbyid(fn.proowner),
    'arguments=' || CASE WHEN fn.prokind = 'a' THEN pg_get_function_arguments(fn.oid) END,
    'returns=' || CASE WHEN fn.prokind = 'a' THEN pg_get_function_result(fn.oid) END,
    'aggregate=' || CASE WHEN fn.prokind = 'a' THEN
      (SELECT concat_ws(', ', 'kind ' || g.aggkind::text,
         'state ' || g.aggtransfn::oid::regprocedure::text || ' ' || format_type(g.aggtranstype, NULL),
         'final ' || CASE WHEN g.aggfinalfn::oid <> 0 THEN g.aggfinalfn::oid::regprocedure::text END,
         'combine ' || CASE WHEN g.aggcombinefn::oid <> 0 THEN g.aggcombinefn::oid::regprocedure::text END,
         'moving state ' || CASE WHEN g.aggmtransfn::oid <> 0 THEN g.aggmtransfn::oid::regprocedure::text END,
         'initial ' || quote_literal(g.agginitval),
         'sort ' || CASE WHEN g.aggsortop <> 0 THEN g.aggsortop::regoperator::text END)
       FROM pg_aggregate g WHERE g.aggfnoid = fn.oid) END),
  'schema', fn.nsqname
FROM fn
UNION ALL
-- triggers
SELECT 'trigger', quote_ident(t.tgname) || ' on ' || rel.qname, concat_ws(E'\x1f',
    'definition=' || pg_get_triggerdef(t.oid),
    'enabled=' || CASE t.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
      WHEN 'A' THEN 'always' ELSE 'origin' END),
  rel.kind, rel.qname
FROM rel JOIN pg_trigger t ON t.tgrelid = rel.oid
WHERE NOT t.tgisinternal
UNION ALL
-- row level security policies
SELECT 'policy', quote_ident(p.polname) || ' on ' || rel.qname, concat_ws(E'\x1f',
    'command=' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
      WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
    'permissive=' || p.polpermissive,
    'roles=' || (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END, ', ' ORDER BY 1)
                 FROM unnest(p.polroles) r),
    'using=' || pg_get_expr(p.polqual, p.polrelid),
    'with check=' || pg_get_expr(p.polwithcheck, p.polrelid)),
  rel.kind, rel.qname
FROM rel JOIN pg_policy p ON p.polrelid = rel.oid
UNION ALL
-- rules (a view's _RETURN rule is its definition)
SELECT 'rule', quote_ident(r.rulename) || ' on ' || rel.qname, concat_ws(E'\x1f',
    'definition=' || pg_get_ruledef(r.oid),
    'enabled=' || CASE r.ev_enabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
      WHEN 'A' THEN 'always' ELSE 'origin' END),
  rel.kind, rel.qname
FROM rel JOIN pg_rewrite r ON r.ev_class = rel.oid
WHERE r.rulename <> '_RETURN'
UNION ALL
-- types: enums, domains, composites, ranges, base types
SELECT 'type', ty.qname, concat_ws(E'\x1f',
    'kind=' || CASE ty.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite'
      WHEN 'r' THEN 'range' WHEN 'b' THEN 'base' WHEN 'p' THEN 'pseudo' ELSE ty.typtype::text END,
    'owner=' || pg_get_userbyid(ty.typowner),
    'labels=' || CASE WHEN ty.typtype = 'e' THEN
      (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
       FROM pg_enum e WHERE e.enumtypid = ty.oid) END,
    'base type=' || CASE WHEN ty.typtype = 'd' THEN format_type(ty.typbasetype, ty.typtypmod) END,
    'default=' || CASE WHEN ty.typtype = 'd' THEN pg_get_expr(ty.typdefaultbin, 0) END,
    'not null=' || CASE WHEN ty.typtype = 'd' THEN ty.typnotnull END,
    'collation=' || CASE WHEN ty.typcollation <> 0 THEN
      (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
       FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
       WHERE co.oid = ty.typcollation) END,
    'constraints=' || CASE WHEN ty.typtype = 'd' THEN
      (SELECT string_agg(quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), '; ' ORDER BY c.conname)
       FROM pg_constraint c WHERE c.contypid = ty.oid AND c.contype <> 'n') END,
    'attributes=' || CASE WHEN ty.typtype = 'c' THEN
      (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attcollation <> at.typcollation THEN ' collate ' ||
              (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
               FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
               WHERE co.oid = a.attcollation) ELSE '' END,
         ', ' ORDER BY a.attnum)
       FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
       WHERE a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END,
    'range=' || CASE WHEN ty.typtype = 'r' THEN
      (SELECT concat_ws(', ', 'subtype ' || format_type(g.rngsubtype, NULL),
         'opclass ' || (SELECT quote_ident(oc.opcname) FROM pg_opclass oc WHERE oc.oid = g.rngsubopc),
         'canonical ' || CASE WHEN g.rngcanonical::oid <> 0 THEN g.rngcanonical::oid::regprocedure::text END,
         'diff ' || CASE WHEN g.rngsubdiff::oid <> 0 THEN g.rngsubdiff::oid::regprocedure::text END)
       FROM pg_range g WHERE g.rngtypid = ty.oid) END,
    'base=' || CASE WHEN ty.typtype = 'b' THEN
      concat_ws(', ', 'input ' || ty.typinput::oid::regprocedure::text,
        'output ' || ty.typoutput::oid::regprocedure::text,
        'receive ' || CASE WHEN ty.typreceive::oid <> 0 THEN ty.typreceive::oid::regprocedure::text END,
        'send ' || CASE WHEN ty.typsend::oid <> 0 THEN ty.typsend::oid::regprocedure::text END,
        'length ' || ty.typlen, 'by value ' || ty.typbyval, 'align ' || ty.typalign::text,
        'storage ' || ty.typstorage::text, 'category ' || ty.typcategory::text,
        'element ' || CASE WHEN ty.typelem <> 0 THEN format_type(ty.typelem, NULL) END) END),
  'schema', ty.nsqname
FROM ty
UNION ALL
-- extensions (their member objects are not listed one by one)
SELECT 'extension', quote_ident(x.extname), concat_ws(E'\x1f', 'version=' || x.extversion,
    'schema=' || (SELECT quote_ident(n.nspname) FROM pg_namespace n WHERE n.oid = x.extnamespace)),
  NULL, NULL
FROM pg_extension x
UNION ALL
-- event triggers
SELECT 'event trigger', quote_ident(e.evtname), concat_ws(E'\x1f',
    'event=' || e.evtevent, 'function=' || e.evtfoid::regprocedure::text,
    'tags=' || array_to_string(e.evttags, ', '),
    'enabled=' || CASE e.evtenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
      WHEN 'A' THEN 'always' ELSE 'origin' END,
    'owner=' || pg_get_userbyid(e.evtowner)),
  NULL, NULL
FROM pg_event_trigger e
WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_event_trigger'::regclass
                    AND d.objid = e.oid AND d.deptype = 'e')
UNION ALL
-- grants that differ from the built-in default, one entry per object and grantee
SELECT 'grant', 'on ' || acl_obj.obj || ' to ' || g.grantee,
  'privileges=' || COALESCE(g.privs, 'none, the default revoked'), acl_obj.pkind, acl_obj.pname
FROM acl_obj CROSS JOIN LATERAL (
  SELECT CASE WHEN COALESCE(a.grantee, d.grantee) = 0 THEN 'PUBLIC'
      ELSE quote_ident(pg_get_userbyid(COALESCE(a.grantee, d.grantee))) END AS grantee,
    a.privs, d.privs AS dprivs
  FROM (SELECT x.grantee, string_agg(x.p, ', ' ORDER BY x.p) AS privs
        FROM (SELECT DISTINCT e.grantee, e.privilege_type
                || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS p
              FROM aclexplode(acl_obj.acl) e) x GROUP BY x.grantee) a
  FULL JOIN
       (SELECT x.grantee, string_agg(x.p, ', ' ORDER BY x.p) AS privs
        FROM (SELECT DISTINCT e.grantee, e.privilege_type
                || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS p
              FROM aclexplode(acl_obj.dflt) e) x GROUP BY x.grantee) d
  ON a.grantee = d.grantee
) g
WHERE g.privs IS DISTINCT FROM g.dprivs
UNION ALL
-- default privileges (ALTER DEFAULT PRIVILEGES)
SELECT 'default privileges', 'for role ' || quote_ident(pg_get_userbyid(da.defaclrole))
    || COALESCE(' in schema ' || quote_ident(n.nspname), '') || ' on '
    || CASE da.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
         WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' ELSE da.defaclobjtype::text END,
  'privileges=' || (SELECT string_agg(x::text, ', ' ORDER BY x::text) FROM unnest(da.defaclacl) x),
  CASE WHEN n.oid IS NOT NULL THEN 'schema' END, quote_ident(n.nspname)
FROM pg_default_acl da LEFT JOIN pg_namespace n ON n.oid = da.defaclnamespace
WHERE da.defaclnamespace = 0 OR da.defaclnamespace IN (SELECT ns.oid FROM ns)
UNION ALL
-- comments, named like the objects they are on where those have a key of their own
SELECT 'comment', 'on ' || COALESCE(p.pkind || ' ' || p.pname, io.type || ' ' || io.identity),
  'text=' || d.description, p.pkind, p.pname
FROM pg_description d
CROSS JOIN LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) io
LEFT JOIN rel ON d.classoid = 'pg_class'::regclass AND rel.oid = d.objoid
LEFT JOIN fn ON d.classoid = 'pg_proc'::regclass AND fn.oid = d.objoid
LEFT JOIN ty ON d.classoid = 'pg_type'::regclass AND ty.oid = d.objoid
LEFT JOIN ns pns ON d.classoid = 'pg_namespace'::regclass AND pns.oid = d.objoid
CROSS JOIN LATERAL (SELECT
  CASE WHEN rel.oid IS NOT NULL THEN CASE WHEN d.objsubid = 0 THEN rel.kind ELSE 'column' END
    WHEN fn.oid IS NOT NULL THEN fn.kind WHEN ty.oid IS NOT NULL THEN 'type'
    WHEN pns.oid IS NOT NULL THEN 'schema' END AS pkind,
  CASE WHEN rel.oid IS NOT NULL THEN rel.qname
      || CASE WHEN d.objsubid = 0 THEN '' ELSE '.' || (SELECT quote_ident(a.attname)
           FROM pg_attribute a WHERE a.attrelid = d.objoid AND a.attnum = d.objsubid) END
    WHEN fn.oid IS NOT NULL THEN fn.qname WHEN ty.oid IS NOT NULL THEN ty.qname
    WHEN pns.oid IS NOT NULL THEN pns.qname END AS pname) p
WHERE (d.objoid >= 16384 OR d.classoid = 'pg_namespace'::regclass)
  AND d.classoid <> 'pg_extension'::regclass
  AND NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = d.classoid AND x.objid = d.objoid
                    AND x.deptype = 'e')
  AND (io.schema IS NULL OR io.schema IN (SELECT ns.nspname FROM ns))
  AND (d.classoid <> 'pg_namespace'::regclass OR d.objoid IN (SELECT ns.oid FROM ns))
UNION ALL
-- everything else: operators, casts, collations, statistics, foreign servers, publications, ...
SELECT io.type, io.identity, other.def,
  COALESCE(other.pkind, CASE WHEN other.nsp IS NOT NULL THEN 'schema' END),
  COALESCE(other.pname, (SELECT ns.qname FROM ns WHERE ns.oid = other.nsp))
FROM other CROSS JOIN LATERAL pg_identify_object(other.cls, other.oid, 0) io
WHERE (other.nsp IS NULL OR other.nsp IN (SELECT ns.oid FROM ns))
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = other.cls AND d.objid = other.oid
                    AND d.deptype IN ('e', 'i'))"#;

/// Settings [`Fingerprint::take`] pins while its query runs, and restores afterwards.
///
/// The deparsing functions qualify names by `search_path` (pinned so that every user object is
/// qualified, `public.orders`, whatever the session's path; `pg_temp` last so that a temporary
/// table cannot shadow a catalog), and print constants by the date, time zone and float
/// settings; `quote_all_identifiers` changes every name. JIT is off because the query's cost
/// estimate can pass `jit_above_cost` (catalog statistics go stale where autovacuum is off, as
/// in scratch clusters), and compiling its hundreds of expressions then takes about a second.
const PINNED_SETTINGS: &[(&str, &str)] = &[
    ("search_path", "pg_catalog, pg_temp"),
    ("jit", "off"),
    ("quote_all_identifiers", "off"),
    ("datestyle", "ISO, MDY"),
    ("intervalstyle", "postgres"),
    ("timezone", "UTC"),
    ("extra_float_digits", "3"),
];

/// The batch [`Fingerprint::take`] sends: [`pinned_batch`] around `query` ([`QUERY`] or a part
/// of it).
fn batch(query: &str, exclude_schemas: &[&str]) -> String {
    pinned_batch(
        &query.replace("@EXCLUDED@", &text_array_literal(exclude_schemas)),
        "fingerprint",
    )
}

/// [`QUERY`] without the parts of its final `UNION ALL` that list only objects of `kinds`. A
/// part's kinds are its leading literal (`SELECT 'column', …`) or a `[kinds: a, b]` note in its
/// comment; a part with neither is always kept. The `WITH` queries stay (those no part reads are
/// not run).
fn query_without(kinds: &[&str]) -> String {
    let mut parts = QUERY.split("\nUNION ALL\n");
    let head = parts.next().unwrap_or_default();
    let cut = head.rfind("\n)\n").map_or(0, |i| i + 3);
    let (with, first) = head.split_at(cut);
    let kept: Vec<&str> = std::iter::once(first)
        .chain(parts)
        .filter(|part| match part_kinds(part) {
            Some(listed) => !listed.iter().all(|k| kinds.contains(k)),
            None => true,
        })
        .collect();
    format!("{with}{}", kept.join("\nUNION ALL\n"))
}

/// The kinds one part of [`QUERY`]'s final `UNION ALL` lists, when it says.
fn part_kinds(part: &str) -> Option<Vec<&str>> {
    for line in part.lines() {
        if let Some(note) = line
            .strip_prefix("--")
            .and_then(|c| c.split_once("[kinds: "))
            .and_then(|(_, rest)| rest.split_once(']'))
        {
            return Some(note.0.split(", ").collect());
        }
        if let Some(rest) = line.strip_prefix("SELECT '") {
            return rest.split_once('\'').map(|(kind, _)| vec![kind]);
        }
        if line.starts_with("SELECT") {
            return None;
        }
    }
    None
}

/// A simple-protocol batch that saves the session's values of [`PINNED_SETTINGS`] in custom
/// settings (`git_migrate.<tag>_saved_<name>`), pins them, runs `query` (statement 2, counted
/// from 0), and restores them. If the query fails, the batch's implicit transaction (or the
/// caller's, when it rolls back) undoes the changes. Shared by the fingerprint and the schema
/// model's reader, whose deparsed text depends on the same settings.
pub(crate) fn pinned_batch(query: &str, tag: &str) -> String {
    let each = |f: &dyn Fn(&str, &str) -> String| {
        PINNED_SETTINGS
            .iter()
            .map(|(name, value)| f(name, value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let saved = |name: &str| format!("git_migrate.{tag}_saved_{name}");
    format!(
        "SELECT {};\nSELECT {};\n{query};\nSELECT {};",
        each(&|name, _| format!(
            "set_config('{}', current_setting('{name}'), false)",
            saved(name)
        )),
        each(&|name, value| format!("set_config('{name}', '{value}', false)")),
        each(&|name, _| format!(
            "set_config('{name}', current_setting('{}'), false)",
            saved(name)
        )),
    )
}

/// A canonical description of every schema object in a database, keyed by kind and name.
///
/// Two fingerprints are equal when the schemas are equal as far as the catalog can tell
/// (see the module docs for what is and is not compared); [`diff`] says how they differ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub(crate) objects: BTreeMap<ObjectKey, Object>,
}

/// One object's description and the object it is part of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Object {
    /// A JSON object of the definition's attributes, every value a string.
    pub(crate) definition: String,
    /// The containing object (a column's table, a table's schema), if any.
    pub(crate) parent: Option<ObjectKey>,
}

impl Fingerprint {
    /// Reads the fingerprint of the database `client` is connected to.
    ///
    /// Leaves out `pg_catalog`, `information_schema`, `pg_toast*`, `pg_temp*` and every schema
    /// in `exclude_schemas` (for `verify`: the ledger schema `git_migrate` and `hdb_catalog`).
    /// One round trip; works inside the caller's transaction, and leaves the session's
    /// settings as it found them (it pins `search_path`, `jit`, and the settings
    /// that change how constants and names are printed, for the query's duration). Needs PostgreSQL 12 or later.
    pub fn take(
        client: &mut impl GenericClient,
        exclude_schemas: &[&str],
    ) -> Result<Fingerprint, postgres::Error> {
        Self::run(client, &batch(QUERY, exclude_schemas))
    }

    /// Only the objects of kinds other than `kinds` (what the schema model does not cover):
    /// the query leaves out the parts that list only those kinds, so the server deparses none
    /// of them. About a fifth of [`Fingerprint::take`]'s cost on a schema of tables and views.
    pub(crate) fn take_kinds_other_than(
        client: &mut impl GenericClient,
        exclude_schemas: &[&str],
        kinds: &[&str],
    ) -> Result<Fingerprint, postgres::Error> {
        Self::run(client, &batch(&query_without(kinds), exclude_schemas))
    }

    fn run(client: &mut impl GenericClient, batch: &str) -> Result<Fingerprint, postgres::Error> {
        // Rows of statement 2 (counted from 0): saving and pinning settings come first.
        let mut statement = 0;
        let mut rows = Vec::new();
        for message in client.simple_query(batch)? {
            match message {
                SimpleQueryMessage::CommandComplete(_) => statement += 1,
                SimpleQueryMessage::Row(row) if statement == 2 => {
                    let text = |i: usize| row.get(i).map(str::to_string);
                    rows.push(Row {
                        kind: text(0).unwrap_or_default(),
                        name: text(1).unwrap_or_default(),
                        definition: text(2).unwrap_or_default(),
                        parent: text(3).zip(text(4)),
                    });
                }
                _ => {}
            }
        }
        Ok(Fingerprint::from_rows(rows))
    }

    /// Builds a fingerprint from the query's rows, in an order that does not depend on the
    /// server's row order.
    fn from_rows(mut rows: Vec<Row>) -> Fingerprint {
        rows.sort_by(|a, b| {
            (&a.kind, &a.name, &a.definition).cmp(&(&b.kind, &b.name, &b.definition))
        });
        let mut objects = BTreeMap::new();
        for row in rows {
            let object = Object {
                definition: attributes_to_json(&row.definition),
                parent: row.parent,
            };
            // Keys are unique by construction (qualified, quoted names); should two objects
            // ever share one, keep both rather than let one hide the other.
            let mut key = (row.kind, row.name.clone());
            let mut n = 1;
            while objects.contains_key(&key) {
                n += 1;
                key.1 = format!("{} #{n}", row.name);
            }
            objects.insert(key, object);
        }
        Fingerprint { objects }
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether there are no objects at all (not even a schema).
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Every object as `(kind, name, description)`, sorted by kind then name. The description
    /// is a JSON object of the definition's attributes (`{"not null":"true","type":"text"}`).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.objects
            .iter()
            .map(|((kind, name), o)| (kind.as_str(), name.as_str(), o.definition.as_str()))
    }

    /// The description of one object, if the fingerprint has it.
    pub fn get(&self, kind: &str, name: &str) -> Option<&str> {
        self.objects
            .get(&(kind.to_string(), name.to_string()))
            .map(|o| o.definition.as_str())
    }

    /// The fingerprint as JSON, to store with a deployment: an array of
    /// `[kind, name, definition, parent kind, parent name]` rows (parents `null` when none),
    /// sorted. [`Fingerprint::from_json`] reads it back.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.objects
                .iter()
                .map(|((kind, name), o)| {
                    let (pk, pn) = match &o.parent {
                        Some((k, n)) => (k.as_str().into(), n.as_str().into()),
                        None => (serde_json::Value::Null, serde_json::Value::Null),
                    };
                    serde_json::json!([kind, name, o.definition, pk, pn])
                })
                .collect(),
        )
    }

    /// Reads what [`Fingerprint::to_json`] wrote; `None` when it is not that shape.
    pub(crate) fn from_json(value: &serde_json::Value) -> Option<Fingerprint> {
        let mut objects = BTreeMap::new();
        for row in value.as_array()? {
            let row = row.as_array()?;
            let text = |i: usize| row.get(i).and_then(|v| v.as_str()).map(str::to_string);
            let parent = text(3).zip(text(4));
            objects.insert(
                (text(0)?, text(1)?),
                Object {
                    definition: text(2)?,
                    parent,
                },
            );
        }
        Some(Fingerprint { objects })
    }

    /// `sha256:…` of the canonical JSON: equal digests mean equal fingerprints.
    pub fn digest(&self) -> String {
        crate::checksum::sha256_hex(self.to_json().to_string().as_bytes())
    }

    /// Whether `key` or one of the objects it is part of is in `keys`.
    fn has_ancestor_in(&self, key: &ObjectKey, keys: &BTreeSet<&ObjectKey>) -> bool {
        let mut current = self.objects.get(key).and_then(|o| o.parent.as_ref());
        // Parents are at most a few levels deep (grant → column → table → schema); the bound
        // only guards against a cycle.
        for _ in 0..8 {
            match current {
                Some(parent) if keys.contains(parent) => return true,
                Some(parent) => current = self.objects.get(parent).and_then(|o| o.parent.as_ref()),
                None => return false,
            }
        }
        false
    }
}

/// One row of [`QUERY`].
struct Row {
    kind: String,
    name: String,
    definition: String,
    parent: Option<ObjectKey>,
}

/// One object that differs between two fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The object's kind: `table`, `column`, `index`, `sequence`, `type`, `grant`, ...
    pub kind: String,
    /// The object's qualified name, e.g. `public.orders.status`.
    pub name: String,
    /// How it differs.
    pub change: Change,
}

/// How an object differs between the fingerprint taken before (before up) and the one taken
/// after (after down). The strings are the objects' descriptions, JSON objects of attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The object exists after, not before (a down that does not undo a `CREATE`).
    Extra {
        /// The description after.
        after: String,
    },
    /// The object existed before, not after (a down that drops too much).
    Missing {
        /// The description before.
        before: String,
    },
    /// The object exists in both with different definitions.
    Changed {
        /// The description before.
        before: String,
        /// The description after.
        after: String,
    },
}

impl fmt::Display for Difference {
    /// One line: `sequence public.ticket_seq exists after down`, `table public.orders is
    /// missing after down`, `column public.orders.status: default changed: 'new'::text →
    /// (none)`. A grant, whose name says only whose it is, also shows its privileges:
    /// `grant on table public.orders to app_reader exists after down (INSERT, SELECT)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line("exists after down", "is missing after down"))
    }
}

impl Difference {
    /// The line [`Difference`]'s `Display` writes, with other words for an object that is only
    /// in the second fingerprint (`extra`) or only in the first (`missing`): against a recorded
    /// end state, `is there now, not in the recorded schema`.
    pub fn line(&self, extra: &str, missing: &str) -> String {
        let privileges = |description: &str| {
            parse_attributes(description)
                .filter(|_| self.kind == "grant" || self.kind == "default privileges")
                .and_then(|mut a| a.remove("privileges"))
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        };
        match &self.change {
            Change::Extra { after } => {
                format!("{} {} {extra}{}", self.kind, self.name, privileges(after))
            }
            Change::Missing { before } => {
                format!(
                    "{} {} {missing}{}",
                    self.kind,
                    self.name,
                    privileges(before)
                )
            }
            Change::Changed { before, after } => format!(
                "{} {}: {}",
                self.kind,
                self.name,
                describe_change(before, after)
            ),
        }
    }

    /// [`Difference::line`] against a recorded end state (the first fingerprint recorded, the
    /// second read now).
    pub fn against_recorded(&self) -> String {
        self.line(
            "is there now, not in the recorded schema",
            "is in the recorded schema, not there now",
        )
    }
}

/// The objects that differ between `before` and `after`, sorted by kind then name.
///
/// An object that is extra (or missing) only because the object it belongs to is extra (or
/// missing) is left out: a table left behind is one difference, not one per column, index and
/// constraint.
pub fn diff(before: &Fingerprint, after: &Fingerprint) -> Vec<Difference> {
    let extra: BTreeSet<&ObjectKey> = after
        .objects
        .keys()
        .filter(|k| !before.objects.contains_key(*k))
        .collect();
    let missing: BTreeSet<&ObjectKey> = before
        .objects
        .keys()
        .filter(|k| !after.objects.contains_key(*k))
        .collect();
    let keys: BTreeSet<&ObjectKey> = before.objects.keys().chain(after.objects.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let change = match (before.objects.get(key), after.objects.get(key)) {
            (Some(b), Some(a)) if b.definition == a.definition => continue,
            (Some(b), Some(a)) => Change::Changed {
                before: b.definition.clone(),
                after: a.definition.clone(),
            },
            (None, Some(_)) if after.has_ancestor_in(key, &extra) => continue,
            (None, Some(a)) => Change::Extra {
                after: a.definition.clone(),
            },
            (Some(_), None) if before.has_ancestor_in(key, &missing) => continue,
            (Some(b), None) => Change::Missing {
                before: b.definition.clone(),
            },
            (None, None) => continue,
        };
        out.push(Difference {
            kind: key.0.clone(),
            name: key.1.clone(),
            change,
        });
    }
    out
}

/// [`diff`] with the columns' positions left out: what a deployment's end state is held to.
/// A rollback cannot put a re-added column back in its old place without rebuilding the table
/// (and the schema differ does not try), so the order of columns is not part of the proof;
/// `verify` still compares it.
pub fn diff_ignoring_column_order(before: &Fingerprint, after: &Fingerprint) -> Vec<Difference> {
    diff(&without_column_order(before), &without_column_order(after))
}

fn without_column_order(f: &Fingerprint) -> Fingerprint {
    let mut out = f.clone();
    for ((kind, _), o) in out.objects.iter_mut() {
        if kind != "column" {
            continue;
        }
        if let Ok(serde_json::Value::Object(mut attributes)) =
            serde_json::from_str::<serde_json::Value>(&o.definition)
        {
            if attributes.remove("position").is_some() {
                o.definition = serde_json::Value::Object(attributes).to_string();
            }
        }
    }
    out
}

/// The differences that remain once CHECK constraints whose two definitions mean the same are
/// left out. PostgreSQL's deparsed text is not always a fixed point: `status IN ('a', 'b')` on a
/// `varchar` column prints as `ANY ((ARRAY['a'::character varying, …])::text[])`, and that text,
/// run again (as a computed down does), prints as `ANY (ARRAY[('a'::character varying)::text,
/// …])`. Both definitions are parsed again by the server, on a temporary copy of the table in a
/// savepoint that is rolled back, and compared as the server prints them then. One round trip
/// per differing constraint; nothing when no constraint differs.
pub(crate) fn equivalent_after_reparse(
    c: &mut impl GenericClient,
    differences: Vec<Difference>,
) -> Vec<Difference> {
    differences
        .into_iter()
        .filter(|d| !reparses_the_same(c, d))
        .collect()
}

fn reparses_the_same(c: &mut impl GenericClient, d: &Difference) -> bool {
    let Change::Changed { before, after } = &d.change else {
        return false;
    };
    let check = |description: &str| -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(description).ok()?;
        let def = v.get("definition")?.as_str()?;
        let def = def.strip_suffix(" NOT VALID").unwrap_or(def);
        def.starts_with("CHECK (").then(|| def.to_string())
    };
    let (Some(b), Some(a)) = (check(before), check(after)) else {
        return false;
    };
    let Some((_, table)) = d.name.split_once(" on ") else {
        return false;
    };
    if d.kind != "constraint" {
        return false;
    }
    let Ok(mut sp) = c.transaction() else {
        return false;
    };
    let sql = format!(
        "SET LOCAL search_path = pg_catalog, pg_temp;
CREATE TEMP TABLE git_migrate_reparse (LIKE {table});
ALTER TABLE git_migrate_reparse ADD CONSTRAINT b {b} NOT VALID, ADD CONSTRAINT a {a} NOT VALID;
SELECT count(DISTINCT pg_get_constraintdef(oid)) FROM pg_constraint WHERE conrelid = 'pg_temp.git_migrate_reparse'::regclass AND conname IN ('a', 'b')"
    );
    let same = sp.simple_query(&sql).ok().is_some_and(|messages| {
        messages
            .iter()
            .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("1")))
    });
    let _ = sp.rollback();
    same
}

/// `ARRAY['a', 'b']::text[]`, every element quoted by [`crate::quote::quote_literal`], which
/// reads the same whatever `standard_conforming_strings` is.
pub(crate) fn text_array_literal(items: &[&str]) -> String {
    let elements: Vec<String> = items
        .iter()
        .map(|s| crate::quote::quote_literal(s))
        .collect();
    format!("ARRAY[{}]::text[]", elements.join(", "))
}

/// Turns the query's `name=value` attributes into a JSON object, in the query's order.
fn attributes_to_json(raw: &str) -> String {
    let mut out = String::from("{");
    for (i, attribute) in raw
        .split(ATTRIBUTE_SEPARATOR)
        .filter(|a| !a.is_empty())
        .enumerate()
    {
        let (name, value) = attribute.split_once('=').unwrap_or((attribute, ""));
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(name));
        out.push(':');
        out.push_str(&json_string(value));
    }
    out.push('}');
    out
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The attributes of a description, or `None` if it is not a JSON object of strings.
fn parse_attributes(description: &str) -> Option<BTreeMap<String, String>> {
    match serde_json::from_str::<serde_json::Value>(description).ok()? {
        serde_json::Value::Object(map) => Some(
            map.into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Longest value shown whole in a one-line summary.
const MAX_SHOWN: usize = 60;
/// Characters of context kept before the first difference in a shortened value.
const CONTEXT: usize = 20;

/// `default changed: 'new'::text → (none); not null changed: false → true`.
fn describe_change(before: &str, after: &str) -> String {
    let (Some(b), Some(a)) = (parse_attributes(before), parse_attributes(after)) else {
        let (b, a) = shorten_pair(before, after);
        return format!("definition changed: {b} → {a}");
    };
    let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let parts: Vec<String> = names
        .into_iter()
        .filter_map(|name| {
            let (old, new) = (b.get(name), a.get(name));
            if old == new {
                return None;
            }
            let (old, new) = (
                old.map_or("(none)", String::as_str),
                new.map_or("(none)", String::as_str),
            );
            Some(describe_value_change(name, old, new))
        })
        .collect();
    if parts.is_empty() {
        // Same attributes in another order: cannot happen with descriptions from `take`.
        "definition changed".to_string()
    } else {
        parts.join("; ")
    }
}

/// `default changed: 'new'::text → (none)`; for multi-line values (function bodies, view
/// definitions) the first line that differs: `definition changed at line 4: … → …`.
fn describe_value_change(name: &str, old: &str, new: &str) -> String {
    if old.contains('\n') || new.contains('\n') {
        let (old_lines, new_lines): (Vec<&str>, Vec<&str>) =
            (old.lines().collect(), new.lines().collect());
        let at = old_lines
            .iter()
            .zip(&new_lines)
            .take_while(|(o, n)| o == n)
            .count();
        let line = |lines: &[&str]| lines.get(at).map_or("(end)", |l| l.trim()).to_string();
        let (o, n) = shorten_pair(&line(&old_lines), &line(&new_lines));
        return format!("{name} changed at line {}: {o} → {n}", at + 1);
    }
    let (o, n) = shorten_pair(old, new);
    format!("{name} changed: {o} → {n}")
}

/// Both values whole if short, else a window of each around their first difference.
fn shorten_pair(old: &str, new: &str) -> (String, String) {
    let (o, n): (Vec<char>, Vec<char>) = (old.chars().collect(), new.chars().collect());
    if o.len() <= MAX_SHOWN && n.len() <= MAX_SHOWN {
        return (old.to_string(), new.to_string());
    }
    let common = o.iter().zip(&n).take_while(|(a, b)| a == b).count();
    let start = common.saturating_sub(CONTEXT);
    (clip(&o, start), clip(&n, start))
}

/// At most [`MAX_SHOWN`] characters from `start`, with `…` where text was cut.
fn clip(chars: &[char], start: usize) -> String {
    let start = start.min(chars.len());
    let end = chars.len().min(start + MAX_SHOWN);
    let mut s = String::new();
    if start > 0 {
        s.push('…');
    }
    s.extend(&chars[start..end]);
    if end < chars.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_of_other_kinds_leaves_out_the_parts_of_the_listed_kinds() {
        assert_eq!(
            query_without(&[]),
            QUERY,
            "nothing left out: the query as it is"
        );
        let slim = query_without(&["column", "view", "materialized view", "comment", "schema"]);
        for gone in [
            "SELECT 'column'",
            "SELECT 'comment'",
            "[kinds: view",
            "SELECT 'schema'",
        ] {
            assert!(!slim.contains(gone), "{gone} is still there");
        }
        for kept in [
            "SELECT 'rule'",
            "SELECT 'event trigger'",
            "-- tables, partitioned",
            "WITH\nns AS",
        ] {
            assert!(slim.contains(kept), "{kept} is gone");
        }
        assert!(!slim.contains("\nUNION ALL\nUNION ALL"));
    }

    /// A test row: kind, name, attributes separated by `|`, parent.
    type TestRow<'a> = (&'a str, &'a str, &'a str, Option<(&'a str, &'a str)>);

    fn fp(rows: &[TestRow]) -> Fingerprint {
        Fingerprint::from_rows(
            rows.iter()
                .map(|(kind, name, def, parent)| Row {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    definition: def.replace('|', "\u{1f}"),
                    parent: parent.map(|(k, n)| (k.to_string(), n.to_string())),
                })
                .collect(),
        )
    }

    #[test]
    fn attributes_become_json() {
        assert_eq!(
            attributes_to_json("type=text\u{1f}default='a=b'::text"),
            r#"{"type":"text","default":"'a=b'::text"}"#
        );
        assert_eq!(attributes_to_json(""), "{}");
    }

    #[test]
    fn changed_column_names_the_attribute() {
        let before = fp(&[(
            "column",
            "public.orders.status",
            "type=text|not null=false|default='new'::text",
            None,
        )]);
        let after = fp(&[(
            "column",
            "public.orders.status",
            "type=text|not null=true",
            None,
        )]);
        let d = diff(&before, &after);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_string(),
            "column public.orders.status: default changed: 'new'::text → (none); \
             not null changed: false → true"
        );
    }

    #[test]
    fn parts_of_an_extra_table_are_folded_into_it() {
        let before = fp(&[("schema", "public", "owner=me", None)]);
        let after = fp(&[
            ("schema", "public", "owner=me", None),
            (
                "table",
                "public.t",
                "kind=ordinary",
                Some(("schema", "public")),
            ),
            (
                "column",
                "public.t.a",
                "type=int",
                Some(("table", "public.t")),
            ),
            (
                "grant",
                "on column public.t.a to bob",
                "privileges=SELECT",
                Some(("column", "public.t.a")),
            ),
            (
                "index",
                "public.t_idx",
                "definition=x",
                Some(("table", "public.t")),
            ),
        ]);
        let d: Vec<String> = diff(&before, &after)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(d, vec!["table public.t exists after down"]);
        let d: Vec<String> = diff(&after, &before)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(d, vec!["table public.t is missing after down"]);
    }

    #[test]
    fn long_values_show_the_first_difference() {
        let body = |n: &str| {
            format!("definition=CREATE FUNCTION f()\n RETURNS int\nAS $$\n  SELECT {n};\n$$")
        };
        let d = diff(
            &fp(&[("function", "public.f()", &body("1"), None)]),
            &fp(&[("function", "public.f()", &body("2"), None)]),
        );
        assert_eq!(
            d[0].to_string(),
            "function public.f(): definition changed at line 4: SELECT 1; → SELECT 2;"
        );
        let long = |tail: &str| format!("definition=CHECK ({} > {tail})", "x".repeat(100));
        let d = diff(
            &fp(&[("constraint", "c on public.t", &long("1"), None)]),
            &fp(&[("constraint", "c on public.t", &long("2"), None)]),
        );
        assert_eq!(
            d[0].to_string(),
            format!(
                "constraint c on public.t: definition changed: …{x} > 1) → …{x} > 2)",
                // 20 characters of context before the first difference.
                x = "x".repeat(17)
            )
        );
    }

    #[test]
    fn row_order_does_not_matter_and_duplicates_are_kept() {
        let rows = [
            ("index", "public.i", "definition=b", None),
            ("index", "public.i", "definition=a", None),
            ("schema", "public", "owner=me", None),
        ];
        let mut reversed = rows;
        reversed.reverse();
        assert_eq!(fp(&rows), fp(&reversed));
        let fingerprint = fp(&rows);
        let names: Vec<(&str, &str)> = fingerprint.iter().map(|(k, n, _)| (k, n)).collect();
        assert_eq!(
            names,
            [
                ("index", "public.i"),
                ("index", "public.i #2"),
                ("schema", "public")
            ]
        );
    }

    #[test]
    fn exclusion_list_is_escaped() {
        assert_eq!(
            text_array_literal(&["a'b", "c\\d"]),
            r"ARRAY['a''b', E'c\\d']::text[]"
        );
        assert_eq!(text_array_literal(&[]), "ARRAY[]::text[]");
    }
}
