//! A model of the user schemas of a database, read from the catalog in one batch, and a pure
//! differ that turns one model into another with ordered DDL (issue 13).
//!
//! [`read::read`] is the I/O edge: one batch that pins `search_path` (so every definition the
//! server deparses is schema-qualified), reads the catalog as one JSON document, and takes the
//! [`Fingerprint`](crate::verify::fingerprint::Fingerprint) to collect what the model does not
//! cover. [`diff::diff`] is pure: two models in, ordered [`diff::Statement`]s out.
//!
//! The model is a flat map of [`Object`]s keyed by [`ObjectId`] (kind and qualified name, named
//! as the fingerprint names them), each with a [`Spec`] (what is compared and what the SQL is
//! built from), the objects it depends on (from `pg_depend`, so that ordering never relies on
//! names) and the objects whose drop takes it along (`pg_depend` auto and internal
//! dependencies, and the object it is part of).
//!
//! **Covered**: schemas, extensions (by name, schema and version), enum, composite, domain and
//! range types, sequences and their `OWNED BY`, tables (partitioned tables and partitions,
//! `UNLOGGED`, storage parameters), columns (type, collation, default, `NOT NULL`, identity,
//! stored generated), constraints (primary key, unique, foreign key, check, exclusion, with
//! `NOT VALID` and `DEFERRABLE` as the server prints them), indexes, views, materialized views,
//! functions and procedures, triggers, policies, the row level security flags, comments, and
//! grants on tables, columns, sequences, functions, schemas and types.
//!
//! **Refused** (collected as [`Unsupported`] so the differ names them): every other kind the
//! fingerprint knows (rules, event triggers, foreign tables, aggregates, operators, casts,
//! collations, text search objects, statistics objects, publications, foreign servers, default
//! privileges, …), base and shell types, and covered objects with something the model does not
//! carry (inheritance, typed tables, a replica identity, a tablespace or table access method, a
//! disabled trigger, column storage or options, an unlogged sequence, a virtual generated
//! column). They refuse a diff when they differ or when the diff would drop the object they
//! belong to; when they are the same on both sides and untouched, they need no DDL.
//!
//! **Not compared**: column order (a column added by `ALTER TABLE … ADD COLUMN` goes last, and
//! reordering would mean rebuilding the table and losing its rows; the fingerprint records a
//! column's position, so a comparison with it must leave `position` out), owners (the differ's
//! statements run as one role and create objects it owns), and the current value of sequences.

pub mod computed;
pub mod diff;
pub mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use computed::{inverse, ComputedAt, ComputedDown, Destroyed};
pub use diff::{diff, script, Action, DiffError, Statement};
pub use read::{read, ReadError};

/// The kinds of object the model covers, in the order objects of equal standing are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `CREATE SCHEMA`.
    Schema,
    /// `CREATE EXTENSION`; its member objects are not listed one by one.
    Extension,
    /// Enum, composite, domain and range types.
    Type,
    /// Functions and procedures.
    Function,
    /// Sequences that are not an identity column's.
    Sequence,
    /// Tables, partitioned tables and partitions.
    Table,
    /// A table's own (not inherited) column.
    Column,
    /// A column's default expression.
    Default,
    /// Primary key, unique, foreign key, check and exclusion constraints.
    Constraint,
    /// Indexes that no constraint owns.
    Index,
    /// Views.
    View,
    /// Materialized views.
    MaterializedView,
    /// Triggers (not the internal ones of foreign keys).
    Trigger,
    /// Row level security policies.
    Policy,
    /// A table's `ENABLE`/`FORCE ROW LEVEL SECURITY` flags, present when either is set.
    RowSecurity,
    /// `ALTER SEQUENCE … OWNED BY`.
    SequenceOwnership,
    /// `COMMENT ON`.
    Comment,
    /// One grantee's privileges on an object, where they differ from the built-in default.
    Grant,
}

impl Kind {
    /// The kind as the fingerprint and error messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Schema => "schema",
            Kind::Extension => "extension",
            Kind::Type => "type",
            Kind::Function => "function",
            Kind::Sequence => "sequence",
            Kind::Table => "table",
            Kind::Column => "column",
            Kind::Default => "default",
            Kind::Constraint => "constraint",
            Kind::Index => "index",
            Kind::View => "view",
            Kind::MaterializedView => "materialized view",
            Kind::Trigger => "trigger",
            Kind::Policy => "policy",
            Kind::RowSecurity => "row level security",
            Kind::SequenceOwnership => "sequence ownership",
            Kind::Comment => "comment",
            Kind::Grant => "grant",
        }
    }
}

/// An object's identity: its kind and qualified name (`public.orders`, `public.orders.status`,
/// `orders_pkey on public.orders`, `public.f(integer)`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// What kind of object.
    pub kind: Kind,
    /// Its qualified, quoted name, unique within the kind.
    pub name: String,
}

impl ObjectId {
    /// An id from a kind and a name.
    pub fn new(kind: Kind, name: impl Into<String>) -> ObjectId {
        ObjectId {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

/// One object of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its identity.
    pub id: ObjectId,
    /// What it is: compared between models, and what its SQL is built from.
    pub spec: Spec,
    /// The object it is part of (a column's table, a default's column, a comment's object).
    pub parent: Option<ObjectId>,
    /// The objects that must exist before it is created (and be dropped after it).
    pub depends_on: BTreeSet<ObjectId>,
    /// The objects whose drop drops this one too (its parent, `pg_depend` auto and internal
    /// dependencies, a sequence's `OWNED BY` column). Its own drop is then left out.
    pub owners: BTreeSet<ObjectId>,
    /// Order among siblings when created together (a column's `attnum`). Not compared.
    pub position: i64,
}

/// What an object is. Definitions are the server's own deparsed text (`pg_get_*def`,
/// `pg_get_expr`, `format_type`), read with an empty `search_path` so they are qualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A schema.
    Schema,
    /// An extension.
    Extension {
        /// The extension's name, quoted.
        name: String,
        /// The schema its objects live in, quoted.
        schema: String,
        /// Its installed version.
        version: String,
    },
    /// An enum type and its labels in sort order.
    Enum {
        /// The labels.
        labels: Vec<String>,
    },
    /// A composite type: `a integer, b text COLLATE "C"`.
    Composite {
        /// The attribute list.
        attributes: String,
    },
    /// A domain.
    Domain {
        /// `format_type` of the base type.
        base: String,
        /// Its collation, when not the base type's.
        collation: Option<String>,
        /// `DEFAULT` expression.
        default: Option<String>,
        /// `NOT NULL`.
        not_null: bool,
        /// Constraints by name: `(name, pg_get_constraintdef)`, sorted.
        constraints: Vec<(String, String)>,
    },
    /// A range type: the options inside `CREATE TYPE name AS RANGE (…)`.
    Range {
        /// `SUBTYPE = …, SUBTYPE_OPCLASS = …, …`.
        options: String,
    },
    /// A sequence (not its current value).
    Sequence {
        /// `AS bigint START WITH 1 INCREMENT BY 1 MINVALUE … MAXVALUE … CACHE 1 [NO] CYCLE`.
        options: String,
    },
    /// `ALTER SEQUENCE s OWNED BY t.c`.
    SequenceOwnership {
        /// The sequence.
        sequence: String,
        /// The column, `schema.table.column`.
        column: String,
    },
    /// A table; its columns are [`Spec::Column`] objects.
    Table {
        /// `PARTITION BY …` key, for a partitioned table.
        partition_by: Option<String>,
        /// The parent and bound (`FOR VALUES …`), for a partition.
        partition_of: Option<(String, String)>,
        /// `UNLOGGED`.
        unlogged: bool,
        /// Storage parameters, `fillfactor=70, …`.
        options: Option<String>,
    },
    /// A table's own column.
    Column {
        /// The table.
        table: String,
        /// The column's quoted name.
        name: String,
        /// `format_type` of its type and modifier.
        data_type: String,
        /// Its collation, when not its type's default.
        collation: Option<String>,
        /// `NOT NULL`.
        not_null: bool,
        /// `ALWAYS` or `BY DEFAULT` for an identity column.
        identity: Option<String>,
        /// The expression of a generated column.
        generated: Option<String>,
    },
    /// A column's default.
    Default {
        /// The table.
        table: String,
        /// The column's quoted name.
        column: String,
        /// The expression.
        expression: String,
    },
    /// A table constraint.
    Constraint {
        /// The table.
        table: String,
        /// The constraint's quoted name.
        name: String,
        /// `pg_get_constraintdef` (with `NOT VALID`, `DEFERRABLE`, …).
        definition: String,
    },
    /// An index.
    Index {
        /// `pg_get_indexdef`.
        definition: String,
    },
    /// A view or materialized view.
    View {
        /// `pg_get_viewdef`.
        definition: String,
        /// Options, `security_barrier=true, …`.
        options: Option<String>,
        /// A materialized view.
        materialized: bool,
        /// For a materialized view: whether it holds data (`WITH [NO] DATA`).
        populated: bool,
    },
    /// A function or procedure.
    Function {
        /// `pg_get_functiondef`: a whole `CREATE OR REPLACE FUNCTION` statement.
        definition: String,
        /// `pg_get_function_arguments`: argument names, modes and defaults.
        arguments: String,
        /// `pg_get_function_result`; `None` for a procedure.
        result: Option<String>,
    },
    /// A trigger.
    Trigger {
        /// The table.
        table: String,
        /// The trigger's quoted name.
        name: String,
        /// `pg_get_triggerdef`.
        definition: String,
    },
    /// A row level security policy.
    Policy {
        /// The table.
        table: String,
        /// The policy's quoted name.
        name: String,
        /// `PERMISSIVE` or `RESTRICTIVE`.
        permissive: bool,
        /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
        command: String,
        /// The roles, quoted (`PUBLIC` for all).
        roles: Vec<String>,
        /// `USING` expression.
        using: Option<String>,
        /// `WITH CHECK` expression.
        with_check: Option<String>,
    },
    /// A table's row level security flags.
    RowSecurity {
        /// The table.
        table: String,
        /// `ENABLE ROW LEVEL SECURITY`.
        enabled: bool,
        /// `FORCE ROW LEVEL SECURITY`.
        forced: bool,
    },
    /// One grantee's privileges on an object (or a column), where they differ from the default
    /// an object gets when it is created.
    Grant {
        /// What `GRANT … ON` names: `TABLE public.t`, `FUNCTION public.f(integer)`, `SCHEMA s`.
        target: String,
        /// For column privileges, the column's quoted name.
        column: Option<String>,
        /// The role, quoted, or `PUBLIC`.
        grantee: String,
        /// The privileges it has, sorted: `SELECT`, `UPDATE WITH GRANT OPTION`, …
        privileges: Vec<String>,
        /// The privileges it would have by default (the owner's, `PUBLIC`'s `EXECUTE` on a
        /// function), which its absence means.
        defaults: Vec<String>,
    },
    /// A comment.
    Comment {
        /// What `COMMENT ON` names: `TABLE public.t`, `COLUMN public.t.c`, `CONSTRAINT c ON
        /// public.t`.
        target: String,
        /// The comment.
        text: String,
    },
}

/// An object the catalog has and the model does not cover (a rule, an aggregate, a grant, …),
/// as the fingerprint describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The fingerprint's kind: `rule`, `aggregate`, `grant`, `operator`, …
    pub kind: String,
    /// Its qualified name.
    pub name: String,
    /// The fingerprint's description, or why a covered kind is not covered in this case.
    pub definition: String,
    /// The object it belongs to, as `(fingerprint kind, name)`, when it has one.
    pub parent: Option<(String, String)>,
}

/// The user schemas of a database: the objects the model covers, and those it does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// Every covered object.
    pub objects: BTreeMap<ObjectId, Object>,
    /// Everything else, keyed by `(kind, name)`.
    pub unsupported: BTreeMap<(String, String), Unsupported>,
}

impl Model {
    /// An object by kind and name.
    pub fn get(&self, kind: Kind, name: &str) -> Option<&Object> {
        self.objects.get(&ObjectId::new(kind, name))
    }

    /// Adds an object, replacing one with the same id.
    pub fn insert(&mut self, object: Object) {
        self.objects.insert(object.id.clone(), object);
    }
}
