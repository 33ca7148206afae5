//! Reading a [`Model`] from a database: the I/O edge of the schema module.
//!
//! Two round trips. The first is one simple-protocol batch that pins the settings the
//! deparsed text depends on (the fingerprint's `PINNED_SETTINGS`: `search_path` above all, so
//! every name the server prints is schema-qualified), runs one query that returns the whole
//! catalog of the user schemas as a single JSON document, and restores the caller's settings.
//! The second is [`Fingerprint::take`], whose objects of kinds the model does not cover become
//! [`Unsupported`] entries, so that the differ can refuse rather than be silently wrong.
//!
//! Definitions come from the server (`pg_get_constraintdef`, `pg_get_indexdef`,
//! `pg_get_viewdef`, `pg_get_functiondef`, `pg_get_triggerdef`, `pg_get_expr`, `format_type`);
//! the differ only wraps them in `CREATE`/`ALTER`. Dependencies come from `pg_depend` and are
//! resolved to model objects here: a view's rewrite rule to the view, an index a constraint
//! owns to the constraint, an array type to its element type, an identity sequence to its
//! column, an extension's member to the extension.

use std::collections::{BTreeSet, HashMap};

use postgres::{GenericClient, SimpleQueryMessage};
use serde::{Deserialize, Deserializer};

use super::{Kind, Model, Object, ObjectId, Spec, Unsupported};
use crate::verify::fingerprint::{pinned_batch, text_array_literal, Fingerprint};

/// Why a model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The catalog query failed.
    #[error("cannot read the schema model from the catalog: {0}")]
    Query(#[source] postgres::Error),
    /// The catalog query returned something other than the expected JSON document.
    #[error("cannot read the schema model: the catalog's answer is not the expected JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// Fingerprint kinds the model covers; every other kind is [`Unsupported`].
const COVERED_FINGERPRINT_KINDS: &[&str] = &[
    "schema",
    "extension",
    "type",
    "sequence",
    "table",
    "column",
    "constraint",
    "index",
    "view",
    "materialized view",
    "function",
    "procedure",
    "trigger",
    "policy",
    "comment",
    "grant",
];

/// The catalog query: one JSON object with an array per catalog area. `@EXCLUDED@` becomes a
/// `text[]` literal of the caller's schemas. Needs PostgreSQL 13 or later (`regcollation`).
const QUERY: &str = r#"WITH
ns AS MATERIALIZED (
  SELECT n.oid, quote_ident(n.nspname) AS qname, n.nspowner, n.nspacl FROM pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_(toast|temp)'
    AND n.nspname <> ALL (@EXCLUDED@)
),
member AS MATERIALIZED (
  SELECT d.classid::regclass::text AS class, d.objid, d.refobjid AS ext
  FROM pg_depend d WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass
),
rel AS MATERIALIZED (
  SELECT c.oid, c.relkind, c.reltype, c.relpersistence, c.reloptions, c.relrowsecurity,
    c.relforcerowsecurity, c.relispartition, c.relpartbound, c.reloftype, c.relispopulated,
    c.relreplident, c.relowner, c.relacl, c.reltablespace, c.relam, ns.qname || '.' || quote_ident(c.relname) AS qname
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
  WHERE c.oid NOT IN (SELECT m.objid FROM member m WHERE m.class = 'pg_class')
)
SELECT json_build_object(
'schemas', (SELECT json_agg(json_build_object('oid', ns.oid, 'name', ns.qname)) FROM ns
  WHERE ns.oid NOT IN (SELECT m.objid FROM member m WHERE m.class = 'pg_namespace')),
'extensions', (SELECT json_agg(json_build_object('oid', x.oid, 'name', quote_ident(x.extname),
    'schema', quote_ident(n.nspname), 'version', x.extversion))
  FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace),
'members', (SELECT json_agg(json_build_array(m.class, m.objid, m.ext)) FROM member m),
'types', (SELECT json_agg(json_build_object('oid', t.oid, 'array', t.typarray, 'relid', t.typrelid,
    'kind', t.typtype, 'name', ns.qname || '.' || quote_ident(t.typname),
    'labels', CASE WHEN t.typtype = 'e' THEN (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)
      FROM pg_enum e WHERE e.enumtypid = t.oid) END,
    'attributes', CASE WHEN t.typtype = 'c' THEN (SELECT string_agg(quote_ident(a.attname) || ' '
        || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attcollation <> at.typcollation
        THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END, ', ' ORDER BY a.attnum)
      FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
      WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END,
    'base', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
    'collation', CASE WHEN t.typtype = 'd' AND t.typcollation <> bt.typcollation
      THEN t.typcollation::regcollation::text END,
    'default', CASE WHEN t.typtype = 'd' THEN pg_get_expr(t.typdefaultbin, 0) END,
    'not_null', t.typnotnull,
    'checks', (SELECT json_agg(json_build_array(quote_ident(c.conname), pg_get_constraintdef(c.oid))
        ORDER BY c.conname)
      FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype <> 'n'),
    'domain_constraints', (SELECT json_agg(c.oid) FROM pg_constraint c WHERE c.contypid = t.oid),
    'range', CASE WHEN t.typtype = 'r' THEN (SELECT concat_ws(', ',
        'SUBTYPE = ' || format_type(g.rngsubtype, NULL),
        'SUBTYPE_OPCLASS = ' || (SELECT quote_ident(n2.nspname) || '.' || quote_ident(oc.opcname)
          FROM pg_opclass oc JOIN pg_namespace n2 ON n2.oid = oc.opcnamespace WHERE oc.oid = g.rngsubopc),
        'COLLATION = ' || CASE WHEN g.rngcollation <> 0 THEN g.rngcollation::regcollation::text END,
        'SUBTYPE_DIFF = ' || CASE WHEN g.rngsubdiff <> 0 THEN g.rngsubdiff::regproc::text END)
      FROM pg_range g WHERE g.rngtypid = t.oid) END,
    'canonical', (SELECT g.rngcanonical <> 0 FROM pg_range g WHERE g.rngtypid = t.oid)))
  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
  WHERE (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
    AND t.oid NOT IN (SELECT m.objid FROM member m WHERE m.class = 'pg_type')
    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype = 'i')),
'relations', (SELECT json_agg(json_build_object('oid', rel.oid, 'kind', rel.relkind,
    'name', rel.qname, 'rowtype', rel.reltype, 'unlogged', rel.relpersistence = 'u',
    'options', array_to_string(rel.reloptions, ', '),
    'rls', rel.relrowsecurity, 'force_rls', rel.relforcerowsecurity,
    'partition_key', CASE WHEN rel.relkind = 'p' THEN pg_get_partkeydef(rel.oid) END,
    'partition_of', CASE WHEN rel.relispartition THEN
      (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = rel.oid) END,
    'bound', CASE WHEN rel.relispartition THEN pg_get_expr(rel.relpartbound, rel.oid) END,
    'inherits', NOT rel.relispartition AND EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = rel.oid),
    'typed', rel.reloftype <> 0,
    'replica_identity', rel.relreplident::text,
    'unusual', rel.reltablespace <> 0
      OR (rel.relam <> 0 AND rel.relam <> (SELECT a.oid FROM pg_am a WHERE a.amname = 'heap')),
    'view', CASE WHEN rel.relkind IN ('v', 'm') THEN pg_get_viewdef(rel.oid) END,
    'populated', rel.relispopulated))
  FROM rel WHERE rel.relkind IN ('r', 'p', 'v', 'm')),
'sequences', (SELECT json_agg(json_build_object('oid', rel.oid, 'name', rel.qname,
    'unlogged', rel.relpersistence = 'u',
    'options', concat_ws(' ', 'AS ' || format_type(s.seqtypid, NULL), 'START WITH ' || s.seqstart,
      'INCREMENT BY ' || s.seqincrement, 'MINVALUE ' || s.seqmin, 'MAXVALUE ' || s.seqmax,
      'CACHE ' || s.seqcache, CASE WHEN s.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END),
    'identity_of', (SELECT json_build_array(d.refobjid, d.refobjsubid) FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = rel.oid
        AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i' LIMIT 1),
    'owned_by', (SELECT json_build_array(d.refobjid, d.refobjsubid) FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = rel.oid
        AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a' AND d.refobjsubid > 0 LIMIT 1)))
  FROM rel JOIN pg_sequence s ON s.seqrelid = rel.oid),
'columns', (SELECT json_agg(json_build_object('rel', a.attrelid, 'num', a.attnum,
    'name', quote_ident(a.attname), 'type', format_type(a.atttypid, a.atttypmod),
    'collation', CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END,
    'not_null', a.attnotnull,
    'identity', CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END,
    'generated', a.attgenerated::text,
    'expression', pg_get_expr(ad.adbin, ad.adrelid), 'default_oid', ad.oid,
    'unusual', a.attstorage <> t.typstorage OR a.attoptions IS NOT NULL))
  FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  WHERE rel.relkind IN ('r', 'p')),
-- a constraint trigger's constraint row is the trigger's
'constraints', (SELECT json_agg(json_build_object('oid', c.oid, 'rel', c.conrelid,
    'name', quote_ident(c.conname), 'type', c.contype::text, 'def', pg_get_constraintdef(c.oid),
    'index', c.conindid, 'inherited', NOT c.conislocal OR c.conparentid <> 0))
  FROM pg_constraint c JOIN rel ON rel.oid = c.conrelid
  WHERE rel.relkind IN ('r', 'p') AND c.contype NOT IN ('n', 't')),
'indexes', (SELECT json_agg(json_build_object('oid', i.indexrelid, 'rel', i.indrelid,
    'name', ic.qname, 'def', pg_get_indexdef(i.indexrelid),
    'child', EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = i.indexrelid),
    'unusual', i.indisclustered OR i.indisreplident OR NOT i.indisvalid OR ic.reltablespace <> 0))
  FROM pg_index i JOIN rel ic ON ic.oid = i.indexrelid JOIN rel t ON t.oid = i.indrelid
  WHERE t.relkind IN ('r', 'p', 'm')),
'functions', (SELECT json_agg(json_build_object('oid', p.oid, 'name', p.oid::regprocedure::text,
    'def', pg_get_functiondef(p.oid), 'args', pg_get_function_arguments(p.oid),
    'result', pg_get_function_result(p.oid), 'procedure', p.prokind = 'p'))
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
  WHERE p.prokind <> 'a'
    AND p.oid NOT IN (SELECT m.objid FROM member m WHERE m.class = 'pg_proc')
    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'i')),
'triggers', (SELECT json_agg(json_build_object('oid', t.oid, 'rel', t.tgrelid,
    'name', quote_ident(t.tgname), 'def', pg_get_triggerdef(t.oid), 'enabled', t.tgenabled::text,
    'cloned', EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_trigger'::regclass
                        AND d.objid = t.oid AND d.deptype = 'P')))
  FROM pg_trigger t JOIN rel ON rel.oid = t.tgrelid WHERE NOT t.tgisinternal),
'policies', (SELECT json_agg(json_build_object('oid', p.oid, 'rel', p.polrelid,
    'name', quote_ident(p.polname),
    'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
      WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
    'permissive', p.polpermissive,
    'roles', (SELECT json_agg(r.name ORDER BY r.name) FROM (SELECT CASE WHEN u = 0 THEN 'PUBLIC'
        ELSE quote_ident(pg_get_userbyid(u)) END AS name FROM unnest(p.polroles) u) r),
    'using', pg_get_expr(p.polqual, p.polrelid),
    'check', pg_get_expr(p.polwithcheck, p.polrelid)))
  FROM pg_policy p JOIN rel ON rel.oid = p.polrelid),
'grants', (SELECT json_agg(json_build_object('class', a.class, 'oid', a.oid, 'sub', a.sub,
    'grantee', g.grantee, 'privileges', g.privs, 'defaults', g.dprivs))
  FROM (
    SELECT 'pg_class' AS class, rel.oid, 0 AS sub, rel.relacl AS acl,
      acldefault(CASE rel.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", rel.relowner) AS dflt
    FROM rel WHERE rel.relacl IS NOT NULL AND rel.relkind IN ('r', 'p', 'v', 'm', 'S')
    UNION ALL
    SELECT 'pg_class', a.attrelid, a.attnum, a.attacl, acldefault('c', rel.relowner)
    FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid
    WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'pg_proc', p.oid, 0, p.proacl, acldefault('f', p.proowner)
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace WHERE p.proacl IS NOT NULL
    UNION ALL
    SELECT 'pg_namespace', ns.oid, 0, ns.nspacl, acldefault('n', ns.nspowner)
    FROM ns WHERE ns.nspacl IS NOT NULL
    UNION ALL
    SELECT 'pg_type', t.oid, 0, t.typacl, acldefault('T', t.typowner)
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace WHERE t.typacl IS NOT NULL
  ) a CROSS JOIN LATERAL (
    SELECT CASE WHEN COALESCE(x.grantee, d.grantee) = 0 THEN 'PUBLIC'
        ELSE quote_ident(pg_get_userbyid(COALESCE(x.grantee, d.grantee))) END AS grantee,
      x.privs, d.privs AS dprivs
    FROM (SELECT e.grantee, json_agg(DISTINCT e.privilege_type
              || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS privs
          FROM aclexplode(a.acl) e GROUP BY e.grantee) x
    FULL JOIN
         (SELECT e.grantee, json_agg(DISTINCT e.privilege_type
              || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS privs
          FROM aclexplode(a.dflt) e GROUP BY e.grantee) d
    ON x.grantee = d.grantee
  ) g
  WHERE g.privs::text IS DISTINCT FROM g.dprivs::text),
'rules', (SELECT json_agg(json_build_array(r.oid, r.ev_class, r.rulename = '_RETURN'))
  FROM pg_rewrite r JOIN rel ON rel.oid = r.ev_class),
'depends', (SELECT json_agg(json_build_array(d.classid::regclass::text, d.objid, d.objsubid,
    d.refclassid::regclass::text, d.refobjid, d.refobjsubid, d.deptype::text))
  FROM pg_depend d WHERE d.objid >= 16384 AND d.deptype IN ('n', 'a', 'i')),
'comments', (SELECT json_agg(json_build_array(d.classoid::regclass::text, d.objoid, d.objsubid,
    d.description))
  FROM pg_description d
  WHERE (d.objoid >= 16384 OR d.classoid = 'pg_namespace'::regclass)
    AND d.classoid <> 'pg_extension'::regclass)
)::text"#;

/// Reads the model of the database `client` is connected to.
///
/// Leaves out `pg_catalog`, `information_schema`, `pg_toast*`, `pg_temp*`, extension members,
/// internal objects and every schema in `exclude_schemas` (the ledger schema `git_migrate`,
/// `hdb_catalog`). Works inside the caller's transaction and leaves the session's settings as
/// it found them.
pub fn read(client: &mut impl GenericClient, exclude_schemas: &[&str]) -> Result<Model, ReadError> {
    let mut statement = 0;
    let mut document = None;
    for message in client
        .simple_query(&batch(exclude_schemas))
        .map_err(ReadError::Query)?
    {
        match message {
            SimpleQueryMessage::CommandComplete(_) => statement += 1,
            SimpleQueryMessage::Row(row) if statement == 2 => {
                document = row.get(0).map(str::to_string);
            }
            _ => {}
        }
    }
    let catalog: Catalog =
        serde_json::from_str(document.as_deref().unwrap_or("{}")).map_err(ReadError::Json)?;
    let fingerprint =
        Fingerprint::take_kinds_other_than(client, exclude_schemas, COVERED_FINGERPRINT_KINDS)
            .map_err(ReadError::Query)?;
    Ok(build(catalog, &fingerprint))
}

/// The reader's batch: [`pinned_batch`] around [`QUERY`] (statement 2).
fn batch(exclude_schemas: &[&str]) -> String {
    pinned_batch(
        &QUERY.replace("@EXCLUDED@", &text_array_literal(exclude_schemas)),
        "schema",
    )
}

/// An object id. `json_build_object` writes an `oid` as a JSON string; accept a number too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Oid(u32);

impl<'de> Deserialize<'de> for Oid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Oid, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Oid(n)),
            Raw::Text(s) => s.parse().map(Oid).map_err(serde::de::Error::custom),
        }
    }
}

/// `null` (what `json_agg` returns for no rows) as an empty list.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
struct Catalog {
    #[serde(default, deserialize_with = "list")]
    schemas: Vec<SchemaRow>,
    #[serde(default, deserialize_with = "list")]
    extensions: Vec<ExtensionRow>,
    #[serde(default, deserialize_with = "list")]
    members: Vec<(String, Oid, Oid)>,
    #[serde(default, deserialize_with = "list")]
    types: Vec<TypeRow>,
    #[serde(default, deserialize_with = "list")]
    relations: Vec<RelationRow>,
    #[serde(default, deserialize_with = "list")]
    sequences: Vec<SequenceRow>,
    #[serde(default, deserialize_with = "list")]
    columns: Vec<ColumnRow>,
    #[serde(default, deserialize_with = "list")]
    constraints: Vec<ConstraintRow>,
    #[serde(default, deserialize_with = "list")]
    indexes: Vec<IndexRow>,
    #[serde(default, deserialize_with = "list")]
    functions: Vec<FunctionRow>,
    #[serde(default, deserialize_with = "list")]
    triggers: Vec<TriggerRow>,
    #[serde(default, deserialize_with = "list")]
    policies: Vec<PolicyRow>,
    #[serde(default, deserialize_with = "list")]
    grants: Vec<GrantRow>,
    #[serde(default, deserialize_with = "list")]
    rules: Vec<(Oid, Oid, bool)>,
    #[serde(default, deserialize_with = "list")]
    depends: Vec<(String, Oid, i32, String, Oid, i32, String)>,
    #[serde(default, deserialize_with = "list")]
    comments: Vec<(String, Oid, i32, String)>,
}

#[derive(Deserialize)]
struct SchemaRow {
    oid: Oid,
    name: String,
}

#[derive(Deserialize)]
struct ExtensionRow {
    oid: Oid,
    name: String,
    schema: String,
    version: String,
}

#[derive(Deserialize)]
struct TypeRow {
    oid: Oid,
    array: Oid,
    relid: Oid,
    kind: String,
    name: String,
    labels: Option<Vec<String>>,
    attributes: Option<String>,
    base: Option<String>,
    collation: Option<String>,
    default: Option<String>,
    not_null: bool,
    #[serde(default, deserialize_with = "list")]
    checks: Vec<(String, String)>,
    #[serde(default, deserialize_with = "list")]
    domain_constraints: Vec<Oid>,
    range: Option<String>,
    canonical: Option<bool>,
}

#[derive(Deserialize)]
struct RelationRow {
    oid: Oid,
    kind: String,
    name: String,
    rowtype: Oid,
    unlogged: bool,
    options: Option<String>,
    rls: bool,
    force_rls: bool,
    partition_key: Option<String>,
    partition_of: Option<String>,
    bound: Option<String>,
    inherits: bool,
    typed: bool,
    replica_identity: String,
    unusual: bool,
    view: Option<String>,
    populated: bool,
}

#[derive(Deserialize)]
struct SequenceRow {
    oid: Oid,
    name: String,
    unlogged: bool,
    options: String,
    identity_of: Option<(Oid, i32)>,
    owned_by: Option<(Oid, i32)>,
}

#[derive(Deserialize)]
struct ColumnRow {
    rel: Oid,
    num: i32,
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    collation: Option<String>,
    not_null: bool,
    identity: Option<String>,
    generated: String,
    expression: Option<String>,
    default_oid: Option<Oid>,
    unusual: bool,
}

#[derive(Deserialize)]
struct ConstraintRow {
    oid: Oid,
    rel: Oid,
    name: String,
    #[serde(rename = "type")]
    contype: String,
    def: String,
    index: Oid,
    inherited: bool,
}

#[derive(Deserialize)]
struct IndexRow {
    oid: Oid,
    rel: Oid,
    name: String,
    def: String,
    child: bool,
    unusual: bool,
}

#[derive(Deserialize)]
struct FunctionRow {
    oid: Oid,
    name: String,
    def: String,
    args: String,
    result: Option<String>,
    procedure: bool,
}

#[derive(Deserialize)]
struct TriggerRow {
    oid: Oid,
    rel: Oid,
    name: String,
    def: String,
    enabled: String,
    cloned: bool,
}

#[derive(Deserialize)]
struct GrantRow {
    class: String,
    oid: Oid,
    sub: i32,
    grantee: String,
    #[serde(default, deserialize_with = "list")]
    privileges: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    defaults: Vec<String>,
}

#[derive(Deserialize)]
struct PolicyRow {
    oid: Oid,
    rel: Oid,
    name: String,
    command: String,
    permissive: bool,
    #[serde(default, deserialize_with = "list")]
    roles: Vec<String>,
    using: Option<String>,
    check: Option<String>,
}

/// Builds the model from the catalog document and the fingerprint: objects, then the
/// dependencies between them, then comments, then what the model does not cover.
fn build(catalog: Catalog, fingerprint: &Fingerprint) -> Model {
    let mut b = Builder::default();
    b.objects(&catalog);
    b.dependencies(&catalog);
    b.comments(&catalog);
    b.grants(&catalog);
    for ((kind, name), object) in &fingerprint.objects {
        if !COVERED_FINGERPRINT_KINDS.contains(&kind.as_str()) {
            b.unsupported(kind, name, &object.definition, object.parent.clone());
        }
    }
    b.model
}

#[derive(Default)]
struct Builder {
    model: Model,
    /// `(catalog, oid)` → model object.
    by_oid: HashMap<(&'static str, Oid), ObjectId>,
    /// `(relation, attnum)` → column (or, for a partition's inherited column, the partition).
    columns: HashMap<(Oid, i32), ObjectId>,
    /// `(catalog, oid)` of an extension's member → the extension.
    members: HashMap<(String, Oid), ObjectId>,
    /// Relation oid → its model id, for tables (parents of columns, constraints, …).
    relations: HashMap<Oid, ObjectId>,
}

impl Builder {
    fn add(&mut self, id: ObjectId, spec: Spec, parent: Option<ObjectId>, position: i64) {
        let mut depends_on = BTreeSet::new();
        let mut owners = BTreeSet::new();
        if let Some(p) = &parent {
            depends_on.insert(p.clone());
            owners.insert(p.clone());
        }
        self.model.insert(Object {
            id,
            spec,
            parent,
            depends_on,
            owners,
            position,
        });
    }

    fn unsupported(
        &mut self,
        kind: &str,
        name: &str,
        definition: &str,
        parent: Option<(String, String)>,
    ) {
        self.model.unsupported.insert(
            (kind.to_string(), name.to_string()),
            Unsupported {
                kind: kind.to_string(),
                name: name.to_string(),
                definition: definition.to_string(),
                parent,
            },
        );
    }

    /// Records that a covered object has an attribute the model does not carry (a replica
    /// identity, a disabled trigger, a tablespace…). The object is its own parent, so a diff
    /// that would drop and recreate it refuses rather than lose the attribute.
    fn unsupported_attribute(&mut self, kind: &str, name: &str, what: &str) {
        let itself = Some((kind.to_string(), name.to_string()));
        self.unsupported(kind, name, what, itself);
    }

    fn objects(&mut self, catalog: &Catalog) {
        for s in &catalog.schemas {
            let id = ObjectId::new(Kind::Schema, &s.name);
            self.by_oid.insert(("pg_namespace", s.oid), id.clone());
            self.add(id, Spec::Schema, None, 0);
        }
        for x in &catalog.extensions {
            let id = ObjectId::new(Kind::Extension, &x.name);
            self.by_oid.insert(("pg_extension", x.oid), id.clone());
            self.add(
                id,
                Spec::Extension {
                    name: x.name.clone(),
                    schema: x.schema.clone(),
                    version: x.version.clone(),
                },
                None,
                0,
            );
        }
        for (class, oid, ext) in &catalog.members {
            if let Some(id) = self.by_oid.get(&("pg_extension", *ext)).cloned() {
                self.members.insert((class.clone(), *oid), id);
            }
        }
        for t in &catalog.types {
            let id = ObjectId::new(Kind::Type, &t.name);
            let spec = match t.kind.as_str() {
                "e" => Spec::Enum {
                    labels: t.labels.clone().unwrap_or_default(),
                },
                "c" => Spec::Composite {
                    attributes: t.attributes.clone().unwrap_or_default(),
                },
                "d" => Spec::Domain {
                    base: t.base.clone().unwrap_or_default(),
                    collation: t.collation.clone(),
                    default: t.default.clone(),
                    not_null: t.not_null,
                    constraints: t.checks.clone(),
                },
                "r" if t.canonical != Some(true) => Spec::Range {
                    options: t.range.clone().unwrap_or_default(),
                },
                other => {
                    let what = match other {
                        "r" => "a range type with a canonical function",
                        "b" => "a base type",
                        "p" => "a pseudo-type",
                        "m" => "a multirange type",
                        _ => "a shell or unknown type",
                    };
                    self.unsupported("type", &t.name, what, None);
                    continue;
                }
            };
            self.by_oid.insert(("pg_type", t.oid), id.clone());
            if t.array.0 != 0 {
                self.by_oid.insert(("pg_type", t.array), id.clone());
            }
            if t.relid.0 != 0 {
                self.by_oid.insert(("pg_class", t.relid), id.clone());
            }
            for c in &t.domain_constraints {
                self.by_oid.insert(("pg_constraint", *c), id.clone());
            }
            self.add(id, spec, None, 0);
        }
        for r in &catalog.relations {
            let (kind, spec) = match r.kind.as_str() {
                "r" | "p" => (
                    Kind::Table,
                    Spec::Table {
                        partition_by: r.partition_key.clone(),
                        partition_of: r
                            .partition_of
                            .clone()
                            .map(|p| (p, r.bound.clone().unwrap_or_default())),
                        unlogged: r.unlogged,
                        options: r.options.clone().filter(|o| !o.is_empty()),
                    },
                ),
                m => (
                    if m == "m" {
                        Kind::MaterializedView
                    } else {
                        Kind::View
                    },
                    Spec::View {
                        definition: r.view.clone().unwrap_or_default(),
                        options: r.options.clone().filter(|o| !o.is_empty()),
                        materialized: m == "m",
                        populated: m != "m" || r.populated,
                    },
                ),
            };
            let id = ObjectId::new(kind, &r.name);
            if r.unusual {
                self.unsupported_attribute(
                    kind.as_str(),
                    &r.name,
                    "a tablespace or access method set",
                );
            }
            self.by_oid.insert(("pg_class", r.oid), id.clone());
            self.by_oid.insert(("pg_type", r.rowtype), id.clone());
            self.relations.insert(r.oid, id.clone());
            if kind == Kind::Table {
                if r.inherits {
                    self.unsupported_attribute("table", &r.name, "inherits from another table");
                }
                if r.typed {
                    self.unsupported_attribute("table", &r.name, "a typed table (OF type)");
                }
                if r.replica_identity != "d" {
                    self.unsupported_attribute("table", &r.name, "a replica identity set");
                }
                if r.rls || r.force_rls {
                    let rls = ObjectId::new(Kind::RowSecurity, &r.name);
                    self.add(
                        rls,
                        Spec::RowSecurity {
                            table: r.name.clone(),
                            enabled: r.rls,
                            forced: r.force_rls,
                        },
                        Some(id.clone()),
                        0,
                    );
                }
            }
            let partition_parent = r.partition_of.clone();
            self.add(id.clone(), spec, None, 0);
            if let (Some(parent), Some(o)) = (partition_parent, self.model.objects.get_mut(&id)) {
                // A partition is created after, and dropped with, its parent.
                let parent = ObjectId::new(Kind::Table, parent);
                o.depends_on.insert(parent.clone());
                o.owners.insert(parent);
            }
        }
        self.columns_and_defaults(catalog);
        self.sequences(catalog);
        self.constraints_and_indexes(catalog);
        for f in &catalog.functions {
            let id = ObjectId::new(Kind::Function, &f.name);
            self.by_oid.insert(("pg_proc", f.oid), id.clone());
            self.add(
                id,
                Spec::Function {
                    definition: f.def.clone(),
                    arguments: f.args.clone(),
                    result: if f.procedure { None } else { f.result.clone() },
                },
                None,
                0,
            );
        }
        for t in &catalog.triggers {
            let Some(table) = self.relations.get(&t.rel).cloned() else {
                continue;
            };
            if t.cloned {
                continue;
            }
            let name = format!("{} on {}", t.name, table.name);
            if t.enabled != "O" {
                self.unsupported_attribute(
                    "trigger",
                    &name,
                    "enabled state other than the default",
                );
            }
            let id = ObjectId::new(Kind::Trigger, &name);
            self.by_oid.insert(("pg_trigger", t.oid), id.clone());
            self.add(
                id,
                Spec::Trigger {
                    table: table.name.clone(),
                    name: t.name.clone(),
                    definition: t.def.clone(),
                },
                Some(table),
                0,
            );
        }
        for p in &catalog.policies {
            let Some(table) = self.relations.get(&p.rel).cloned() else {
                continue;
            };
            let id = ObjectId::new(Kind::Policy, format!("{} on {}", p.name, table.name));
            self.by_oid.insert(("pg_policy", p.oid), id.clone());
            self.add(
                id,
                Spec::Policy {
                    table: table.name.clone(),
                    name: p.name.clone(),
                    permissive: p.permissive,
                    command: p.command.clone(),
                    roles: p.roles.clone(),
                    using: p.using.clone(),
                    with_check: p.check.clone(),
                },
                Some(table),
                0,
            );
        }
        for (oid, relation, is_view_rule) in &catalog.rules {
            if *is_view_rule {
                if let Some(view) = self.relations.get(relation).cloned() {
                    self.by_oid.insert(("pg_rewrite", *oid), view);
                }
            }
        }
    }

    fn columns_and_defaults(&mut self, catalog: &Catalog) {
        for c in &catalog.columns {
            let Some(table) = self.relations.get(&c.rel).cloned() else {
                continue;
            };
            let partition = matches!(
                self.model.objects.get(&table).map(|o| &o.spec),
                Some(Spec::Table {
                    partition_of: Some(_),
                    ..
                })
            );
            if partition {
                // A partition's columns are its parent's.
                self.columns.insert((c.rel, c.num), table.clone());
                continue;
            }
            let name = format!("{}.{}", table.name, c.name);
            let id = ObjectId::new(Kind::Column, &name);
            self.columns.insert((c.rel, c.num), id.clone());
            if c.unusual {
                self.unsupported_attribute("column", &name, "storage or options set");
            }
            let generated = match c.generated.as_str() {
                "" => None,
                "s" => c.expression.clone(),
                _ => {
                    self.unsupported_attribute("column", &name, "a virtual generated column");
                    c.expression.clone()
                }
            };
            if let Some(oid) = c.default_oid {
                if generated.is_some() {
                    self.by_oid.insert(("pg_attrdef", oid), id.clone());
                } else if let Some(expression) = &c.expression {
                    let default = ObjectId::new(Kind::Default, &name);
                    self.by_oid.insert(("pg_attrdef", oid), default.clone());
                    self.add(
                        default,
                        Spec::Default {
                            table: table.name.clone(),
                            column: c.name.clone(),
                            expression: expression.clone(),
                        },
                        Some(id.clone()),
                        i64::from(c.num),
                    );
                }
            }
            self.add(
                id,
                Spec::Column {
                    table: table.name.clone(),
                    name: c.name.clone(),
                    data_type: c.data_type.clone(),
                    collation: c.collation.clone(),
                    not_null: c.not_null,
                    identity: c.identity.clone(),
                    generated,
                },
                Some(table),
                i64::from(c.num),
            );
        }
    }

    fn sequences(&mut self, catalog: &Catalog) {
        for s in &catalog.sequences {
            if let Some(column) = s.identity_of.and_then(|k| self.columns.get(&k).cloned()) {
                // An identity column's sequence is part of the column.
                self.by_oid.insert(("pg_class", s.oid), column);
                continue;
            }
            let id = ObjectId::new(Kind::Sequence, &s.name);
            self.by_oid.insert(("pg_class", s.oid), id.clone());
            if s.unlogged {
                self.unsupported_attribute("sequence", &s.name, "an unlogged sequence");
            }
            self.add(
                id.clone(),
                Spec::Sequence {
                    options: s.options.clone(),
                },
                None,
                0,
            );
            if let Some(column) = s.owned_by.and_then(|k| self.columns.get(&k).cloned()) {
                // Dropping the column drops the sequence; OWNED BY itself is set once both exist.
                if let Some(o) = self.model.objects.get_mut(&id) {
                    o.owners.insert(column.clone());
                }
                let ownership = ObjectId::new(Kind::SequenceOwnership, &s.name);
                self.add(
                    ownership.clone(),
                    Spec::SequenceOwnership {
                        sequence: s.name.clone(),
                        column: column.name.clone(),
                    },
                    Some(id),
                    0,
                );
                if let Some(o) = self.model.objects.get_mut(&ownership) {
                    o.depends_on.insert(column.clone());
                    o.owners.insert(column);
                }
            }
        }
    }

    fn constraints_and_indexes(&mut self, catalog: &Catalog) {
        for c in &catalog.constraints {
            let Some(table) = self.relations.get(&c.rel).cloned() else {
                continue;
            };
            if c.inherited {
                continue;
            }
            let id = ObjectId::new(Kind::Constraint, format!("{} on {}", c.name, table.name));
            self.by_oid.insert(("pg_constraint", c.oid), id.clone());
            if matches!(c.contype.as_str(), "p" | "u" | "x") && c.index.0 != 0 {
                self.by_oid.insert(("pg_class", c.index), id.clone());
            }
            self.add(
                id,
                Spec::Constraint {
                    table: table.name.clone(),
                    name: c.name.clone(),
                    definition: c.def.clone(),
                },
                Some(table),
                0,
            );
        }
        for i in &catalog.indexes {
            if i.child || self.by_oid.contains_key(&("pg_class", i.oid)) {
                continue;
            }
            let Some(table) = self.relations.get(&i.rel).cloned() else {
                continue;
            };
            let id = ObjectId::new(Kind::Index, &i.name);
            if i.unusual {
                self.unsupported_attribute(
                    "index",
                    &i.name,
                    "clustered, replica identity or invalid",
                );
            }
            self.by_oid.insert(("pg_class", i.oid), id.clone());
            self.add(
                id,
                Spec::Index {
                    definition: i.def.clone(),
                },
                Some(table),
                0,
            );
        }
    }

    /// The model object a catalog object is or belongs to.
    fn resolve(&self, class: &str, oid: Oid, sub: i32) -> Option<ObjectId> {
        if let Some(ext) = self.members.get(&(class.to_string(), oid)) {
            return Some(ext.clone());
        }
        if class == "pg_class" && sub > 0 {
            if let Some(c) = self.columns.get(&(oid, sub)) {
                return Some(c.clone());
            }
        }
        let class: &'static str = match class {
            "pg_class" => "pg_class",
            "pg_type" => "pg_type",
            "pg_proc" => "pg_proc",
            "pg_constraint" => "pg_constraint",
            "pg_trigger" => "pg_trigger",
            "pg_policy" => "pg_policy",
            "pg_rewrite" => "pg_rewrite",
            "pg_attrdef" => "pg_attrdef",
            "pg_namespace" => "pg_namespace",
            "pg_extension" => "pg_extension",
            _ => return None,
        };
        self.by_oid.get(&(class, oid)).cloned()
    }

    fn dependencies(&mut self, catalog: &Catalog) {
        for (class, oid, sub, ref_class, ref_oid, ref_sub, deptype) in &catalog.depends {
            let (Some(a), Some(b)) = (
                self.resolve(class, *oid, *sub),
                self.resolve(ref_class, *ref_oid, *ref_sub),
            ) else {
                continue;
            };
            if a == b {
                continue;
            }
            // A sequence's OWNED BY is its ownership object's dependency, not the sequence's:
            // the sequence comes before the column's default that uses it.
            if a.kind == Kind::Sequence && b.kind == Kind::Column {
                continue;
            }
            if let Some(o) = self.model.objects.get_mut(&a) {
                o.depends_on.insert(b.clone());
                if deptype == "a" || deptype == "i" {
                    o.owners.insert(b);
                }
            }
        }
    }

    fn grants(&mut self, catalog: &Catalog) {
        for g in &catalog.grants {
            let Some(target) = self.resolve(&g.class, g.oid, g.sub) else {
                continue;
            };
            let Some(object) = self.model.objects.get(&target) else {
                continue;
            };
            let (on, column) = match (&object.spec, target.kind) {
                (Spec::Column { table, name, .. }, _) => (format!("TABLE {table}"), Some(name)),
                (_, Kind::Table | Kind::View | Kind::MaterializedView) if g.sub == 0 => {
                    (format!("TABLE {}", target.name), None)
                }
                (_, Kind::Sequence) => (format!("SEQUENCE {}", target.name), None),
                (Spec::Function { result: None, .. }, _) => {
                    (format!("PROCEDURE {}", target.name), None)
                }
                (_, Kind::Function) => (format!("FUNCTION {}", target.name), None),
                (_, Kind::Schema) => (format!("SCHEMA {}", target.name), None),
                (_, Kind::Type) if g.class == "pg_type" => (format!("TYPE {}", target.name), None),
                _ => {
                    // Privileges on a part the model folds into another object (a view's
                    // column, an identity sequence, an extension's member).
                    let what = format!("on {target} part {} to {}", g.sub, g.grantee);
                    self.unsupported("grant", &what, &g.privileges.join(", "), None);
                    continue;
                }
            };
            let id = ObjectId::new(Kind::Grant, format!("on {target} to {}", g.grantee));
            let (mut privileges, mut defaults) = (g.privileges.clone(), g.defaults.clone());
            privileges.sort();
            defaults.sort();
            self.add(
                id,
                Spec::Grant {
                    target: on,
                    column: column.cloned(),
                    grantee: g.grantee.clone(),
                    privileges,
                    defaults,
                },
                Some(target),
                0,
            );
        }
        // Revoking a table privilege revokes it on the columns too: column grants are made
        // after, and remade with, the same grantee's grant on the table.
        let column_grants: Vec<(ObjectId, ObjectId)> = self
            .model
            .objects
            .values()
            .filter_map(|o| match (&o.spec, &o.parent) {
                (Spec::Grant { grantee, .. }, Some(column)) if column.kind == Kind::Column => {
                    let table = self.model.objects.get(column)?.parent.as_ref()?;
                    let on_table = ObjectId::new(Kind::Grant, format!("on {table} to {grantee}"));
                    self.model
                        .objects
                        .contains_key(&on_table)
                        .then(|| (o.id.clone(), on_table))
                }
                _ => None,
            })
            .collect();
        for (column_grant, table_grant) in column_grants {
            if let Some(o) = self.model.objects.get_mut(&column_grant) {
                o.depends_on.insert(table_grant);
            }
        }
    }

    fn comments(&mut self, catalog: &Catalog) {
        for (class, oid, sub, text) in &catalog.comments {
            let Some(target) = self.resolve(class, *oid, *sub) else {
                continue;
            };
            let Some(object) = self.model.objects.get(&target) else {
                continue;
            };
            let name = &target.name;
            let on = match (&object.spec, target.kind) {
                (Spec::Schema, _) => format!("SCHEMA {name}"),
                (Spec::Extension { .. }, _) => format!("EXTENSION {name}"),
                (Spec::Domain { .. }, _) => format!("DOMAIN {name}"),
                (_, Kind::Type) if class == "pg_type" || *sub == 0 => format!("TYPE {name}"),
                (_, Kind::Sequence) => format!("SEQUENCE {name}"),
                (_, Kind::Table) if *sub == 0 => format!("TABLE {name}"),
                (_, Kind::Column) => format!("COLUMN {name}"),
                (_, Kind::View) if *sub == 0 => format!("VIEW {name}"),
                (_, Kind::MaterializedView) if *sub == 0 => {
                    format!("MATERIALIZED VIEW {name}")
                }
                (Spec::Function { result: None, .. }, _) => format!("PROCEDURE {name}"),
                (_, Kind::Function) => format!("FUNCTION {name}"),
                (Spec::Constraint { table, name, .. }, _) if class == "pg_constraint" => {
                    format!("CONSTRAINT {name} ON {table}")
                }
                (_, Kind::Index) => format!("INDEX {name}"),
                (Spec::Trigger { table, name, .. }, _) => format!("TRIGGER {name} ON {table}"),
                (Spec::Policy { table, name, .. }, _) => format!("POLICY {name} ON {table}"),
                _ => {
                    // A comment on a part the model folds into another object (an index a
                    // constraint owns, a view's column, a composite type's attribute).
                    let what = format!("on {target} part {sub}");
                    self.unsupported("comment", &what, text, None);
                    continue;
                }
            };
            let id = ObjectId::new(Kind::Comment, target.to_string());
            self.add(
                id,
                Spec::Comment {
                    target: on,
                    text: text.clone(),
                },
                Some(target),
                0,
            );
        }
    }
}
