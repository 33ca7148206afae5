#!/usr/bin/env python3
"""Writes the git repository that bench/metadata.sh measures `metadata diff` on.

    python3 make_metadata_repo.py DIR [--tables 5000] [--changed 20] [--added 5] [--removed 5]

DIR must not exist. The result is a Hasura CLI config v3 project at the repository root
(`config.yaml` with `version: 3`, the layout of ../shared/reference/hasura-cli.md §2.2) with two
commits, tagged `a` and `b`, and a root commit of its own tagged `empty`:

  a  N tracked tables in per-table files metadata/databases/default/tables/public_<t>.yaml, listed
     in tables.yaml as `- "!include public_<t>.yaml"` (the string form `hasura metadata export`
     writes); every table has 7-12 columns, 1-2 relationships (object relationship `owner` on
     user_id, plus on every even-numbered table an array relationship to the next table), and
     select + insert permissions for the roles `user` and `manager` with column lists and
     filters/checks on session variables. Plus 5 tracked functions (per-function files), 3
     actions (actions.yaml + actions.graphql), 2 cron triggers, 1 REST endpoint, 1 query
     collection with its allow-list entry, 1 inherited role, and 3 migrations under
     migrations/default/ creating the first tables.
  b  a, with --changed tables' permissions edited (columns added to or removed from a role's
     select or insert column list), --added new tables and --removed tables gone (none of the
     removed tables is the target of a relationship).
  empty  the same config.yaml and the `default` source with no tables or functions, and no other
     metadata: `metadata diff empty a` builds a's whole snapshot (no file in common to skip).

Everything is deterministic (fixed names, author and dates), so the same arguments always give
the same commit ids. DIR/expect.json (outside the repository) lists what `metadata diff a b`
must report: {"tables": {"changed": [...], "added": [...], "removed": [...]}, "total": n}.

Standard library + the git CLI only.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

NOUNS = [
    "accounts", "addresses", "invoices", "orders", "order_items", "payments", "products",
    "reviews", "shipments", "subscriptions", "tickets", "comments", "documents", "events",
    "messages", "notes", "projects", "tasks", "teams", "uploads",
]
EXTRA = ["title", "description", "amount", "currency", "priority", "due_at", "external_ref",
         "score", "tags", "archived"]


def table_name(i):
    return f"{NOUNS[i % len(NOUNS)]}_{i:05d}"


def columns(i):
    """7-12 columns, deterministic per table."""
    base = ["id", "user_id", "org_id", "name", "status", "created_at", "updated_at"]
    return base + EXTRA[: i % 6]


def col_list(cols, indent):
    pad = " " * indent
    return "".join(f"{pad}- {c}\n" for c in sorted(cols))


def table_yaml(i, n, perms):
    """One per-table file in the shape `hasura metadata export` writes (keys in its order)."""
    name = table_name(i)
    out = [f"table:\n  name: {name}\n  schema: public\n"]
    out.append(
        "object_relationships:\n"
        "  - name: owner\n"
        "    using:\n"
        "      foreign_key_constraint_on: user_id\n"
    )
    if i % 2 == 0 and i + 1 < n:
        out.append(
            "array_relationships:\n"
            f"  - name: {NOUNS[(i + 1) % len(NOUNS)]}\n"
            "    using:\n"
            "      foreign_key_constraint_on:\n"
            "        column: parent_id\n"
            "        table:\n"
            f"          name: {table_name(i + 1)}\n"
            "          schema: public\n"
        )
    ins_user, ins_mgr, sel_user, sel_mgr = perms
    out.append(
        "insert_permissions:\n"
        "  - role: manager\n"
        "    permission:\n"
        "      check:\n"
        "        org_id:\n"
        "          _eq: X-Hasura-Org-Id\n"
        "      columns:\n" + col_list(ins_mgr, 8) +
        "    comment: \"\"\n"
        "  - role: user\n"
        "    permission:\n"
        "      check:\n"
        "        user_id:\n"
        "          _eq: X-Hasura-User-Id\n"
        "      set:\n"
        "        user_id: x-hasura-User-Id\n"
        "      columns:\n" + col_list(ins_user, 8) +
        "    comment: \"\"\n"
    )
    out.append(
        "select_permissions:\n"
        "  - role: manager\n"
        "    permission:\n"
        "      columns:\n" + col_list(sel_mgr, 8) +
        "      filter:\n"
        "        org_id:\n"
        "          _eq: X-Hasura-Org-Id\n"
        "      allow_aggregations: true\n"
        "    comment: \"\"\n"
        "  - role: user\n"
        "    permission:\n"
        "      columns:\n" + col_list(sel_user, 8) +
        "      filter:\n"
        "        _and:\n"
        "          - user_id:\n"
        "              _eq: X-Hasura-User-Id\n"
        "          - status:\n"
        "              _neq: deleted\n"
        f"      limit: {50 + i % 5 * 50}\n"
        "    comment: \"\"\n"
    )
    return "".join(out)


def base_perms(i):
    cols = columns(i)
    ins_user = [c for c in cols if c not in ("id", "user_id", "org_id", "created_at", "updated_at")]
    ins_mgr = [c for c in cols if c not in ("id", "created_at", "updated_at")]
    sel_user = [c for c in cols if c != "org_id"]
    sel_mgr = list(cols)
    return ins_user, ins_mgr, sel_user, sel_mgr


def changed_perms(i, k):
    """The B side of a changed table: four kinds of edits, in turn."""
    ins_user, ins_mgr, sel_user, sel_mgr = (list(x) for x in base_perms(i))
    kind = k % 4
    if kind == 0:      # user may now see org_id
        sel_user.append("org_id")
    elif kind == 1:    # user may no longer see status; manager sees a new column
        sel_user.remove("status")
        sel_mgr.append("deleted_at")
    elif kind == 2:    # user may no longer insert name
        ins_user.remove("name")
    else:              # manager may no longer insert status, may insert a new column
        ins_mgr.remove("status")
        ins_mgr.append("assignee_id")
    return ins_user, ins_mgr, sel_user, sel_mgr


CONFIG = """version: 3
endpoint: http://localhost:8080
metadata_directory: metadata
actions:
  kind: synchronous
  handler_webhook_baseurl: http://localhost:3000
"""

DATABASES = """- name: default
  kind: postgres
  configuration:
    connection_info:
      database_url:
        from_env: HASURA_GRAPHQL_DATABASE_URL
      isolation_level: read-committed
      pool_settings:
        connection_lifetime: 600
        idle_timeout: 180
        max_connections: 50
        retries: 1
      use_prepared_statements: true
  tables: "!include default/tables/tables.yaml"
  functions: "!include default/functions/functions.yaml"
"""

FUNCTIONS = ["search_products", "search_orders", "user_feed", "org_stats", "recent_events"]

ACTIONS = """actions:
  - name: place_order
    definition:
      kind: synchronous
      handler: '{{ACTION_BASE_URL}}/place_order'
      forward_client_headers: true
      type: mutation
    permissions:
      - role: user
      - role: manager
    comment: Places an order for the current user
  - name: refund_payment
    definition:
      kind: asynchronous
      handler: '{{ACTION_BASE_URL}}/refund_payment'
      type: mutation
      timeout: 30
    permissions:
      - role: manager
  - name: exchange_rate
    definition:
      handler: '{{ACTION_BASE_URL}}/exchange_rate'
      type: query
    permissions:
      - role: user
      - role: manager
custom_types:
  enums:
    - name: RefundReason
      values:
        - value: damaged
        - value: late
        - value: other
  input_objects:
    - name: PlaceOrderInput
    - name: RefundInput
  objects:
    - name: PlaceOrderOutput
    - name: RefundOutput
    - name: ExchangeRate
  scalars: []
"""

ACTIONS_GRAPHQL = """type Mutation {
  place_order(input: PlaceOrderInput!): PlaceOrderOutput
}

type Mutation {
  refund_payment(input: RefundInput!): RefundOutput
}

type Query {
  exchange_rate(from: String!, to: String!): ExchangeRate
}

enum RefundReason {
  damaged
  late
  other
}

input PlaceOrderInput {
  product_id: Int!
  quantity: Int!
}

input RefundInput {
  payment_id: Int!
  reason: RefundReason!
}

type PlaceOrderOutput {
  order_id: Int!
  status: String!
}

type RefundOutput {
  refund_id: Int!
}

type ExchangeRate {
  rate: Float!
  at: String!
}
"""

CRON = """- name: nightly_cleanup
  webhook: '{{CRON_BASE_URL}}/cleanup'
  schedule: 0 3 * * *
  include_in_metadata: true
  payload: {}
  retry_conf:
    num_retries: 3
    retry_interval_seconds: 60
    timeout_seconds: 60
    tolerance_seconds: 21600
- name: hourly_rollup
  webhook: '{{CRON_BASE_URL}}/rollup'
  schedule: 0 * * * *
  include_in_metadata: true
  payload:
    granularity: hour
  comment: Aggregates events per org
"""

QUERY_COLLECTIONS = """- name: allowed-queries
  definition:
    queries:
      - name: my_orders
        query: |
          query my_orders {
            orders_00003 {
              id
              status
            }
          }
"""

ALLOW_LIST = """- collection: allowed-queries
  scope:
    global: true
"""

REST_ENDPOINTS = """- name: my_orders
  url: my_orders
  methods:
    - GET
  definition:
    query:
      collection_name: allowed-queries
      query_name: my_orders
  comment: ""
"""

INHERITED_ROLES = """- role_name: support
  role_set:
    - user
    - manager
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def git(repo, *args, date=None):
    env = dict(os.environ)
    env.update({
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1", "HOME": repo,  # no user/system config leaks in
    })
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    subprocess.run(["git", "-C", repo, *args], check=True, env=env, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--tables", type=int, default=5000)
    ap.add_argument("--changed", type=int, default=20)
    ap.add_argument("--added", type=int, default=5)
    ap.add_argument("--removed", type=int, default=5)
    a = ap.parse_args()
    n = a.tables
    if a.changed + 2 * a.removed > n // 2:
        sys.exit("too many changes for that few tables")
    if os.path.exists(a.dir):
        sys.exit(f"{a.dir} exists")
    out = os.path.abspath(a.dir)
    repo = os.path.join(out, "repo")
    os.makedirs(repo)
    git(repo, "init", "-q", "-b", "main")
    md = os.path.join(repo, "metadata")
    tdir = os.path.join(md, "databases", "default", "tables")

    # ------------------------------------------------------------------ commit a
    write(os.path.join(repo, "config.yaml"), CONFIG)
    write(os.path.join(md, "version.yaml"), "version: 3\n")
    write(os.path.join(md, "databases", "databases.yaml"), DATABASES)
    fdir = os.path.join(md, "databases", "default", "functions")
    for f in FUNCTIONS:
        write(os.path.join(fdir, f"public_{f}.yaml"),
              f"function:\n  name: {f}\n  schema: public\nconfiguration:\n  exposed_as: query\n"
              "permissions:\n  - role: manager\n  - role: user\n")
    write(os.path.join(fdir, "functions.yaml"),
          "".join(f'- "!include public_{f}.yaml"\n' for f in sorted(FUNCTIONS)))
    write(os.path.join(md, "actions.yaml"), ACTIONS)
    write(os.path.join(md, "actions.graphql"), ACTIONS_GRAPHQL)
    write(os.path.join(md, "cron_triggers.yaml"), CRON)
    write(os.path.join(md, "query_collections.yaml"), QUERY_COLLECTIONS)
    write(os.path.join(md, "allow_list.yaml"), ALLOW_LIST)
    write(os.path.join(md, "rest_endpoints.yaml"), REST_ENDPOINTS)
    write(os.path.join(md, "inherited_roles.yaml"), INHERITED_ROLES)
    for f, body in [("remote_schemas.yaml", "[]\n"), ("network.yaml", "{}\n"),
                    ("api_limits.yaml", "{}\n"), ("graphql_schema_introspection.yaml", "{}\n")]:
        write(os.path.join(md, f), body)
    # a handful of migrations creating the first tables (the diff does not read them)
    for k in range(3):
        t = table_name(k)
        cols = ",\n  ".join(
            ["id bigserial PRIMARY KEY", "user_id text NOT NULL", "org_id text NOT NULL",
             "name text NOT NULL", "status text NOT NULL DEFAULT 'new'",
             "created_at timestamptz NOT NULL DEFAULT now()",
             "updated_at timestamptz NOT NULL DEFAULT now()"]
            + [f"{c} text" for c in EXTRA[: k % 6]]
            + (["parent_id bigint"] if k % 2 == 1 else []))
        mdir = os.path.join(repo, "migrations", "default", f"{1700000000001 + k}_create_{t}")
        write(os.path.join(mdir, "up.sql"), f"CREATE TABLE public.{t} (\n  {cols}\n);\n")
        write(os.path.join(mdir, "down.sql"), f"DROP TABLE public.{t};\n")

    tables_a = list(range(n))
    for i in tables_a:
        write(os.path.join(tdir, f"public_{table_name(i)}.yaml"), table_yaml(i, n, base_perms(i)))

    def tables_yaml(idx):
        names = sorted(f"public_{table_name(i)}.yaml" for i in idx)
        return "".join(f'- "!include {f}"\n' for f in names)

    write(os.path.join(tdir, "tables.yaml"), tables_yaml(tables_a))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"Track {n} tables", date="2026-01-01T00:00:00Z")
    git(repo, "tag", "a")

    # ------------------------------------------------------------------ commit b
    # removed: even-numbered tables (no relationship points at them), spread over the range;
    # changed: odd-numbered tables, spread likewise; added: new indices after the last one.
    step = n // (a.removed + 1) if a.removed else 1
    removed = [((k + 1) * step) // 2 * 2 for k in range(a.removed)]
    cstep = n // (a.changed + 1) if a.changed else 1
    changed = [((k + 1) * cstep) // 2 * 2 + 1 for k in range(a.changed)]
    assert not set(removed) & set(changed) and len(set(removed)) == a.removed \
        and len(set(changed)) == a.changed
    added = [n + k for k in range(a.added)]
    for k, i in enumerate(changed):
        write(os.path.join(tdir, f"public_{table_name(i)}.yaml"),
              table_yaml(i, n, changed_perms(i, k)))
    for i in removed:
        os.remove(os.path.join(tdir, f"public_{table_name(i)}.yaml"))
    for i in added:
        # new tables: no array relationship to a table that does not exist
        write(os.path.join(tdir, f"public_{table_name(i)}.yaml"),
              table_yaml(i, i + 1, base_perms(i)))
    tables_b = sorted(set(tables_a) - set(removed)) + added
    write(os.path.join(tdir, "tables.yaml"), tables_yaml(tables_b))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m",
        f"Permissions of {a.changed} tables; track {a.added} tables, untrack {a.removed}",
        date="2026-01-02T00:00:00Z")
    git(repo, "tag", "b")

    # ------------------------------------------------------------------ commit empty
    git(repo, "checkout", "-q", "--orphan", "empty-metadata")
    git(repo, "rm", "-rfq", ".")
    write(os.path.join(repo, "config.yaml"), CONFIG)
    write(os.path.join(md, "version.yaml"), "version: 3\n")
    write(os.path.join(md, "databases", "databases.yaml"),
          DATABASES.replace('  tables: "!include default/tables/tables.yaml"\n', "  tables: []\n")
          .replace('  functions: "!include default/functions/functions.yaml"\n', ""))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "No metadata objects", date="2026-01-03T00:00:00Z")
    git(repo, "tag", "empty")
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "empty-metadata")

    git(repo, "repack", "-adq")   # one pack, as in a clone
    git(repo, "prune")

    ident = lambda idx: sorted(f"public.{table_name(i)}" for i in idx)
    expect = {"tables": {"changed": ident(changed), "added": ident(added),
                         "removed": ident(removed)},
              "total": a.changed + a.added + a.removed,
              "tables_a": len(tables_a), "tables_b": len(tables_b)}
    with open(os.path.join(out, "expect.json"), "w") as f:
        json.dump(expect, f, indent=1)
    print(f"{repo}: a = {len(tables_a)} tables, b = {len(tables_b)} tables "
          f"({a.changed} changed, {a.added} added, {a.removed} removed)")


if __name__ == "__main__":
    main()
