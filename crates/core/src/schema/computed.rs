//! Downs computed from the schema itself: the statements that turn the model read just after a
//! migration's up into the model read just before it (issue 13).
//!
//! Two places compute them, with the same [`inverse`]:
//! - **at apply time**, inside the deployment transaction, for a migration applied without a
//!   usable down (missing, empty or only comments): exact for that database, stored in its
//!   ledger row (`migrations.computed_down`);
//! - **at rollback time**, by replaying the applied history in a scratch database, for a
//!   migration with neither (adopted from Hasura, or applied by an older git-migrate).
//!
//! A computed down reverses the *schema*. Rows an up inserted or changed are not put back, and a
//! computed down that drops a table or a column says so ([`ComputedDown::destroys`]).

use serde::{Deserialize, Serialize};

use super::{diff, Kind, Model, Spec};

/// Where a computed down was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComputedAt {
    /// In the deployment that applied the migration (stored in the ledger).
    Apply,
    /// Now, by replaying the applied history in a scratch database.
    Replay,
}

impl ComputedAt {
    /// How plans name it.
    pub fn describe(self) -> &'static str {
        match self {
            ComputedAt::Apply => "computed when it was applied (stored in the ledger)",
            ComputedAt::Replay => {
                "computed now by replaying the applied history in a scratch database"
            }
        }
    }
}

/// Data a computed down destroys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destroyed {
    /// What: `drops table public.t and its rows`.
    pub what: String,
    /// The table whose rows or values go, quoted and qualified, for a row estimate.
    pub table: Option<String>,
}

/// A down computed from two models.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputedDown {
    /// Where it was computed.
    pub at: ComputedAt,
    /// The SQL, one statement per line (empty when the up changed no schema).
    pub sql: String,
    /// The statements that destroy data.
    #[serde(default)]
    pub destroys: Vec<Destroyed>,
    /// Why no down could be computed (an object kind outside the model, a failed catalog
    /// read): `sql` is empty then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ComputedDown {
    /// A down that could not be computed, and why.
    pub fn failed(at: ComputedAt, error: impl Into<String>) -> ComputedDown {
        ComputedDown {
            at,
            sql: String::new(),
            destroys: vec![],
            error: Some(error.into()),
        }
    }

    /// The JSON stored in the ledger.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a computed down serializes")
    }

    /// Reads the ledger's JSON (None when it is not a computed down: written by hand).
    pub(crate) fn from_json(text: &str) -> Option<ComputedDown> {
        serde_json::from_str(text).ok()
    }
}

/// The down of a migration whose up turned `before` into `after`: `diff(after, before)`.
pub fn inverse(before: &Model, after: &Model, at: ComputedAt) -> ComputedDown {
    match diff(after, before) {
        Ok(statements) => {
            let destroys = statements
                .iter()
                .filter_map(|s| {
                    let what = s.destroys.clone()?;
                    let table = after.objects.get(&s.object).and_then(|o| match &o.spec {
                        Spec::Column { table, .. } => Some(table.clone()),
                        _ if s.object.kind == Kind::Table => Some(s.object.name.clone()),
                        _ => None,
                    });
                    Some(Destroyed { what, table })
                })
                .collect();
            let sql = statements
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("\n");
            ComputedDown {
                at,
                sql,
                destroys,
                error: None,
            }
        }
        Err(e) => ComputedDown::failed(at, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_json_round_trips_and_hand_written_json_is_not_a_down() {
        let d = ComputedDown {
            at: ComputedAt::Apply,
            sql: "DROP TABLE public.t;".into(),
            destroys: vec![Destroyed {
                what: "drops table public.t and its rows".into(),
                table: Some("public.t".into()),
            }],
            error: None,
        };
        assert_eq!(ComputedDown::from_json(&d.to_json()), Some(d));
        assert_eq!(ComputedDown::from_json("{\"sql\": 1}"), None);
        let f = ComputedDown::failed(ComputedAt::Replay, "rule public.r");
        assert_eq!(ComputedDown::from_json(&f.to_json()), Some(f));
    }

    #[test]
    fn the_inverse_of_no_change_is_empty() {
        let m = Model::default();
        let d = inverse(&m, &m, ComputedAt::Apply);
        assert_eq!(d.sql, "");
        assert!(d.error.is_none() && d.destroys.is_empty());
    }
}
