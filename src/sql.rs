//! `readiness aggregate --emit-sql duckdb|spark`: the ingest rules and the aggregate stage as
//! SQL, so that the heavy pass runs on an existing engine where the data lives and writes a
//! statistics directory that `analyze --stats DIR` reads (see [`crate::aggregate::store`]).
//!
//! The queries restate, rule for rule, what [`crate::ingest`] and
//! [`crate::aggregate::StatsSet::build`] do: the same validation (in the same order), the same
//! duplicate rule (first occurrence in file order, then row order), the same final verdict
//! (latest review, ties to the most conservative), the same bins (corrected against the
//! correctly rounded edges), the same fixed-point sums. The equality is tested: `tests/stats.rs`
//! runs the DuckDB script over generated data and compares every statistics table and metric
//! with the native run's.
//!
//! Known differences, documented in the README: SQL's `trim` removes spaces only (the native
//! path trims any Unicode white space) before lower-casing criticality and verdict spellings;
//! rows the native path quarantines are simply left out (the SQL writes no rejects file).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use readiness_metrics::reasoning::AttackCatalog;
use readiness_metrics::Granularity;

use crate::aggregate::store::{DAY_US, FORMAT_VERSION};
use crate::aggregate::FIXED_SCALE;
use crate::ingest::{ColumnMap, MAX_STRING_BYTES, MAX_TS_US, MIN_TS_US};

/// The SQL dialects the aggregation is emitted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
    Spark,
}

/// What the emitted script reads and writes.
pub struct SqlOptions<'a> {
    pub dialect: Dialect,
    pub decisions: &'a [String],
    pub verdicts: &'a [String],
    /// The statistics directory the script writes (one `<table>.parquet` per table).
    pub out: &'a str,
    pub granularity: Granularity,
    pub unwatched: &'a BTreeSet<String>,
    pub columns: &'a ColumnMap,
    pub catalog: &'a AttackCatalog,
    /// Whether the inputs' `decided_at` and `reviewed_at` hold nanoseconds, as far as the
    /// files readable where the script is emitted show: DuckDB reads nanoseconds with
    /// `epoch_ns`, as it has no `epoch_us` for zoned nanoseconds.
    pub nanoseconds: Nanoseconds,
    /// The decisions' optional columns that no input file (readable where the script is
    /// emitted) holds, nor names in a hive folder: the SQL gives them the native path's values
    /// (null target, no cited IDs, not executed) instead of naming a column the engine would
    /// not find.
    pub absent: &'a BTreeSet<&'static str>,
}

/// Which input timestamps are in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Nanoseconds {
    pub decided_at: bool,
    pub reviewed_at: bool,
}

impl Dialect {
    fn quote(self, s: &str) -> String {
        match self {
            Dialect::DuckDb => format!("'{}'", s.replace('\'', "''")),
            Dialect::Spark => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        }
    }

    fn ident(self, s: &str) -> String {
        match self {
            Dialect::DuckDb => format!("\"{}\"", s.replace('"', "\"\"")),
            Dialect::Spark => format!("`{}`", s.replace('`', "``")),
        }
    }

    fn view(self, name: &str, body: &str) -> String {
        match self {
            Dialect::DuckDb => format!("CREATE OR REPLACE TEMP VIEW {name} AS\n{body};\n"),
            Dialect::Spark => format!("CREATE OR REPLACE TEMPORARY VIEW {name} AS\n{body};\n"),
        }
    }

    /// Reads Parquet inputs with the file name and the row number in the file.
    fn source(self, name: &str, specs: &[String]) -> String {
        match self {
            Dialect::DuckDb => {
                let paths: Vec<String> = specs
                    .iter()
                    .map(|s| {
                        if Path::new(s).is_dir() {
                            self.quote(&format!("{}/**/*.parquet", s.trim_end_matches('/')))
                        } else {
                            self.quote(s)
                        }
                    })
                    .collect();
                self.view(
                    name,
                    &format!(
                        "SELECT *, filename AS __file, file_row_number AS __row\nFROM read_parquet([{}], filename = true, file_row_number = true, hive_partitioning = false, union_by_name = true)",
                        paths.join(", ")
                    ),
                )
            }
            Dialect::Spark => {
                // Queried by path, so that the hidden `_metadata` columns (file and row
                // index) resolve; directories are read with partition discovery.
                let union: Vec<String> = specs
                    .iter()
                    .map(|s| {
                        format!(
                            "SELECT *, _metadata.file_path AS __file, _metadata.row_index AS __row FROM parquet.{}",
                            self.ident(s)
                        )
                    })
                    .collect();
                self.view(name, &union.join("\nUNION ALL\n"))
            }
        }
    }

    /// Microseconds since the epoch of a timestamp column (of `ns`anoseconds: floored, as the
    /// native ingest does). DuckDB's `epoch_us` has no overload for zoned nanoseconds
    /// (`TIMESTAMPTZ_NS`), and `epoch_ns` fails on microsecond timestamps past 2262 (which
    /// the native ingest rejects as rows), so each unit gets its own function.
    fn epoch_us(self, e: &str, ns: bool) -> String {
        match self {
            Dialect::DuckDb if ns => format!("(epoch_ns({e}) // 1000)"),
            Dialect::DuckDb => format!("epoch_us({e})"),
            Dialect::Spark => format!("unix_micros(CAST({e} AS TIMESTAMP))"),
        }
    }

    /// Period start (days since the epoch) of a microsecond timestamp.
    fn period(self, us: &str, g: Granularity) -> String {
        let unit = match g {
            Granularity::Week => "week",
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
        };
        match self {
            Dialect::DuckDb => format!(
                "CAST(CAST(date_trunc('{unit}', make_timestamp({us})) AS DATE) - DATE '1970-01-01' AS INTEGER)"
            ),
            Dialect::Spark => format!(
                "datediff(CAST(date_trunc('{unit}', timestamp_micros({us})) AS DATE), DATE '1970-01-01')"
            ),
        }
    }

    fn int_div(self, a: &str, b: i64) -> String {
        match self {
            Dialect::DuckDb => format!("({a} // {b})"),
            Dialect::Spark => format!("({a} div {b})"),
        }
    }

    fn byte_len(self, e: &str) -> String {
        match self {
            Dialect::DuckDb => format!("strlen({e})"),
            Dialect::Spark => format!("octet_length({e})"),
        }
    }

    fn list_len(self, e: &str) -> String {
        match self {
            Dialect::DuckDb => format!("coalesce(len({e}), 0)"),
            Dialect::Spark => format!("(CASE WHEN {e} IS NULL THEN 0 ELSE size({e}) END)"),
        }
    }

    fn bigint_sum(self, e: &str) -> String {
        format!("CAST(SUM({e}) AS BIGINT)")
    }

    /// Writes a query's rows to `out/<name>.parquet`.
    fn write(self, out: &str, name: &str, query: &str) -> String {
        let path = format!("{}/{name}.parquet", out.trim_end_matches('/'));
        match self {
            Dialect::DuckDb => format!(
                "COPY (\n{query}\n) TO {} (FORMAT parquet);\n",
                self.quote(&path)
            ),
            Dialect::Spark => format!(
                "INSERT OVERWRITE DIRECTORY {} USING parquet\n{query};\n",
                self.quote(&path)
            ),
        }
    }
}

/// The emitted script: views for validation and joins, then one write per statistics table.
pub fn emit(o: &SqlOptions) -> String {
    let d = o.dialect;
    let g = o.granularity;
    let q = |s: &str| d.quote(s);
    let input = |table: &str, contract: &str| {
        let key = if table == "verdicts" && contract == "decision_id" {
            o.columns
                .map
                .get("verdict_decision_id")
                .or_else(|| o.columns.map.get(contract))
        } else {
            o.columns.map.get(contract)
        };
        d.ident(key.map(String::as_str).unwrap_or(contract))
    };
    let scale = format!("{FIXED_SCALE:.1}");
    let fixed = |e: &str| format!("CAST(floor({e} * {scale} + 0.5) AS BIGINT)");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "-- readiness {}: the aggregate stage as {} SQL (statistics format {FORMAT_VERSION}, period {}).\n-- Writes a statistics directory for `readiness analyze --stats {}`{}.\n",
        env!("CARGO_PKG_VERSION"),
        match d {
            Dialect::DuckDb => "DuckDB",
            Dialect::Spark => "Spark",
        },
        g.as_str(),
        o.out,
        match d {
            Dialect::DuckDb => " (create it first: DuckDB writes into an existing directory)",
            Dialect::Spark => "",
        }
    );
    if d == Dialect::Spark {
        // Periods and days are UTC whatever the cluster's default time zone.
        s += "SET spark.sql.session.timeZone=UTC;\n";
    }
    s += &d.source("raw_decisions", o.decisions);
    s += &d.source("raw_verdicts", o.verdicts);

    // Decisions: canonical columns, then the first failing rule.
    let too_long = |cols: &[&str]| {
        cols.iter()
            .map(|c| format!("coalesce({} > {MAX_STRING_BYTES}, false)", d.byte_len(c)))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let optional = |contract: &'static str, absent: &str| match o.absent.contains(contract) {
        true => absent.to_string(),
        false => input("decisions", contract),
    };
    // -0.0 becomes 0.0 (as in ingest), so that value counts and sums are sign-clean.
    let c = input("decisions", "confidence");
    let dec_cols = format!(
        "SELECT CAST({} AS STRING) AS decision_id,\n  {} AS decided_us,\n  CAST({} AS STRING) AS action_class,\n  CASE WHEN CAST({c} AS DOUBLE) = 0.0 THEN 0.0 ELSE CAST({c} AS DOUBLE) END AS confidence,\n  CAST({} AS STRING) AS model_version,\n  lower(trim(CAST({} AS STRING))) AS asset_criticality,\n  CAST({} AS BOOLEAN) AS privileged,\n  CAST({} AS STRING) AS target_entity,\n  {} AS technique_ids,\n  CAST({} AS BOOLEAN) AS executed,\n  __file, __row\nFROM raw_decisions",
        input("decisions", "decision_id"),
        d.epoch_us(&input("decisions", "decided_at"), o.nanoseconds.decided_at),
        input("decisions", "action_class"),
        input("decisions", "model_version"),
        input("decisions", "asset_criticality"),
        input("decisions", "privileged"),
        optional("target_entity", "NULL"),
        optional(
            "technique_ids",
            match d {
                Dialect::DuckDb => "CAST(NULL AS VARCHAR[])",
                Dialect::Spark => "CAST(NULL AS ARRAY<STRING>)",
            }
        ),
        optional("executed", "false"),
    );
    s += &d.view(
        "dec_columns",
        &dec_cols.replace("AS STRING", string_type(d)),
    );
    let dec_reason = format!(
        "SELECT *, CASE\n  WHEN decision_id IS NULL THEN 'null_decision_id'\n  WHEN decided_us IS NULL THEN 'null_decided_at'\n  WHEN action_class IS NULL THEN 'null_action_class'\n  WHEN confidence IS NULL THEN 'null_confidence'\n  WHEN model_version IS NULL THEN 'null_model_version'\n  WHEN asset_criticality IS NULL THEN 'null_asset_criticality'\n  WHEN privileged IS NULL THEN 'null_privileged'\n  WHEN {} THEN 'string_too_long'\n  WHEN decided_us < {MIN_TS_US} OR decided_us >= {MAX_TS_US} THEN 'timestamp_out_of_range'\n  WHEN isnan(confidence) OR confidence < 0.0 OR confidence > 1.0 THEN 'confidence_out_of_range'\n  WHEN asset_criticality NOT IN ('low', 'medium', 'high', 'critical') THEN 'unknown_asset_criticality'\n  END AS reason\nFROM dec_columns",
        too_long(&["decision_id", "action_class", "model_version", "target_entity"])
    );
    s += &d.view("dec_checked", &dec_reason);
    s += &d.view(
        "dec_ranked",
        "SELECT *, row_number() OVER (PARTITION BY decision_id ORDER BY __file, __row) AS __k\nFROM dec_checked WHERE reason IS NULL",
    );
    s += &d.view("dec_valid", "SELECT * FROM dec_ranked WHERE __k = 1");
    s += &d.view(
        "dec_rejected_ids",
        "SELECT DISTINCT decision_id FROM dec_checked WHERE reason IS NOT NULL AND decision_id IS NOT NULL\nUNION\nSELECT DISTINCT decision_id FROM dec_ranked WHERE __k > 1",
    );

    // Verdicts: canonical columns, the join to decisions, the first failing rule.
    let ver_cols = format!(
        "SELECT CAST({} AS STRING) AS decision_id,\n  {} AS reviewed_us,\n  CAST({} AS STRING) AS analyst_id,\n  lower(trim(CAST({} AS STRING))) AS verdict\nFROM raw_verdicts",
        input("verdicts", "decision_id"),
        d.epoch_us(&input("verdicts", "reviewed_at"), o.nanoseconds.reviewed_at),
        input("verdicts", "analyst_id"),
        input("verdicts", "verdict"),
    );
    s += &d.view(
        "ver_columns",
        &ver_cols.replace("AS STRING", string_type(d)),
    );
    let ver_reason = format!(
        "SELECT v.*, dv.decided_us, dv.action_class, CASE\n  WHEN v.decision_id IS NULL THEN 'null_decision_id'\n  WHEN v.reviewed_us IS NULL THEN 'null_reviewed_at'\n  WHEN v.analyst_id IS NULL THEN 'null_analyst_id'\n  WHEN v.verdict IS NULL THEN 'null_verdict'\n  WHEN {} THEN 'string_too_long'\n  WHEN v.reviewed_us < {MIN_TS_US} OR v.reviewed_us >= {MAX_TS_US} THEN 'timestamp_out_of_range'\n  WHEN v.verdict NOT IN ('approve', 'override', 'reject', 'timeout') THEN 'unknown_verdict'\n  WHEN r.decision_id IS NOT NULL AND dv.decided_us IS NULL THEN 'decision_rejected'\n  WHEN dv.decided_us IS NULL THEN 'unknown_decision'\n  WHEN v.reviewed_us < dv.decided_us THEN 'review_before_decision'\n  END AS reason\nFROM ver_columns v\nLEFT JOIN dec_valid dv ON v.decision_id = dv.decision_id\nLEFT JOIN dec_rejected_ids r ON v.decision_id = r.decision_id",
        too_long(&["v.decision_id", "v.analyst_id"])
    );
    s += &d.view("ver_checked", &ver_reason);
    s += &d.view(
        "ver_valid",
        "SELECT decision_id, decided_us, action_class, analyst_id, verdict, reviewed_us - decided_us AS delay_us,\n  reviewed_us * 4 + CASE verdict WHEN 'reject' THEN 3 WHEN 'override' THEN 2 WHEN 'approve' THEN 1 ELSE 0 END AS __key\nFROM ver_checked WHERE reason IS NULL",
    );
    // Final verdict: latest review, ties to the most conservative (reject > override >
    // approve > timeout), packed into one integer key as in ingest.
    s += &d.view(
        "final_verdicts",
        "SELECT decision_id, CASE WHEN max(__key) % 4 = 0 THEN 3 ELSE max(__key) % 4 - 1 END AS outcome\nFROM ver_valid GROUP BY decision_id",
    );
    let fine = "floor(confidence * 100.0)";
    let fine_bin = format!(
        "CAST(greatest(least(CASE WHEN confidence >= ({fine} + 1.0) / 100.0 THEN {fine} + 1.0 WHEN confidence < {fine} / 100.0 THEN {fine} - 1.0 ELSE {fine} END, 99.0), 0.0) AS INTEGER)"
    );
    let cal = "(ceil(confidence * 10.0) - 1.0)";
    let cal_bin = format!(
        "CAST(greatest(least(CASE WHEN confidence <= {cal} / 10.0 THEN {cal} - 1.0 WHEN confidence > ({cal} + 1.0) / 10.0 THEN {cal} + 1.0 ELSE {cal} END, 9.0), 0.0) AS INTEGER)"
    );
    s += &d.view(
        "dj",
        &format!(
            "SELECT d.*, CAST(coalesce(f.outcome, 4) AS INTEGER) AS outcome,\n  {} AS period,\n  CAST({} AS INTEGER) AS day,\n  {cal_bin} AS cal_bin,\n  {fine_bin} AS fine_bin\nFROM dec_valid d LEFT JOIN final_verdicts f ON d.decision_id = f.decision_id",
            d.period("d.decided_us", g),
            d.int_div("d.decided_us", DAY_US),
        ),
    );

    // ATT&CK: every listed ID with its status; citations of anything else are invented.
    let attack: Vec<String> = o
        .catalog
        .entries()
        .map(|(id, stale)| {
            format!(
                "({}, {})",
                q(id),
                q(if stale { "stale" } else { "current" })
            )
        })
        .collect();
    s += &d.view(
        "attack",
        &format!(
            "SELECT * FROM (VALUES\n{}\n) AS t(technique_id, status)",
            attack.join(",\n")
        ),
    );
    let explode = match d {
        Dialect::DuckDb => "SELECT decision_id, action_class, period, model_version, upper(trim(CAST(unnest(technique_ids) AS VARCHAR))) AS technique_id FROM dj",
        Dialect::Spark => "SELECT decision_id, action_class, period, model_version, upper(trim(CAST(t AS STRING))) AS technique_id FROM dj LATERAL VIEW explode(technique_ids) e AS t",
    };
    s += &d.view(
        "cited_rows",
        &format!(
            "SELECT c.decision_id, c.action_class, c.period, c.model_version, c.technique_id,\n  CASE WHEN a.status = 'stale' THEN 'stale' ELSE 'unknown' END AS status\nFROM ({explode}) c\nLEFT JOIN attack a ON c.technique_id = a.technique_id\nWHERE c.technique_id IS NOT NULL AND (a.status IS NULL OR a.status <> 'current')"
        ),
    );

    let sum = |e: &str| d.bigint_sum(e);
    let count = "CAST(count(*) AS BIGINT)";
    s += &d.write(
        o.out,
        "suffstats",
        &format!(
            "SELECT action_class, period, model_version, asset_criticality, privileged, cal_bin, fine_bin, outcome, executed,\n  {count} AS n,\n  {} AS sum_conf,\n  {} AS sum_conf2,\n  {} AS sum_conf3,\n  {} AS sum_conf4\nFROM dj\nGROUP BY action_class, period, model_version, asset_criticality, privileged, cal_bin, fine_bin, outcome, executed",
            sum(&fixed("confidence")),
            sum(&fixed("confidence * confidence")),
            sum(&fixed("confidence * confidence * confidence")),
            sum(&fixed("confidence * confidence * confidence * confidence")),
        ),
    );
    s += &d.write(
        o.out,
        "confidence",
        &format!(
            "SELECT action_class, period, confidence, {count} AS n FROM dj GROUP BY action_class, period, confidence"
        ),
    );
    let unwatched: Vec<String> = o.unwatched.iter().map(|c| q(c)).collect();
    let watched_filter = if unwatched.is_empty() {
        String::new()
    } else {
        format!("WHERE action_class NOT IN ({})\n", unwatched.join(", "))
    };
    s += &d.write(
        o.out,
        "daily",
        &format!(
            "SELECT action_class, day, target_entity, {count} AS n,\n  {} AS n_priv_crit,\n  {} AS sum_conf,\n  {} AS n_reviewed,\n  {} AS n_disagree\nFROM dj\n{watched_filter}GROUP BY action_class, day, target_entity",
            sum("CASE WHEN privileged OR asset_criticality IN ('high', 'critical') THEN 1 ELSE 0 END"),
            sum(&fixed("confidence")),
            sum("CASE WHEN outcome < 3 THEN 1 ELSE 0 END"),
            sum("CASE WHEN outcome IN (1, 2) THEN 1 ELSE 0 END"),
        ),
    );
    s += &d.write(
        o.out,
        "reasoning",
        &format!(
            "SELECT v.action_class, v.period, v.model_version, v.n_decisions, v.n_citing,\n  CAST(coalesce(c.n_unknown, 0) AS BIGINT) AS n_unknown, CAST(coalesce(c.n_stale, 0) AS BIGINT) AS n_stale\nFROM (\n  SELECT action_class, period, model_version, {count} AS n_decisions,\n    {} AS n_citing\n  FROM dj GROUP BY action_class, period, model_version\n) v\nLEFT JOIN (\n  SELECT action_class, period, model_version,\n    count(DISTINCT CASE WHEN status = 'unknown' THEN decision_id END) AS n_unknown,\n    count(DISTINCT CASE WHEN status = 'stale' THEN decision_id END) AS n_stale\n  FROM cited_rows GROUP BY action_class, period, model_version\n) c ON v.action_class = c.action_class AND v.period = c.period AND v.model_version = c.model_version",
            sum(&format!("CASE WHEN {} > 0 THEN 1 ELSE 0 END", d.list_len("technique_ids"))),
        ),
    );
    s += &d.write(
        o.out,
        "cited",
        "SELECT period, model_version, technique_id, status, CAST(count(DISTINCT decision_id) AS BIGINT) AS decisions\nFROM cited_rows GROUP BY period, model_version, technique_id, status",
    );
    s += &d.write(
        o.out,
        "reviews",
        &format!(
            "SELECT action_class, {} AS period, analyst_id, verdict, delay_us, {count} AS n\nFROM ver_valid GROUP BY action_class, {}, analyst_id, verdict, delay_us",
            d.period("decided_us", g),
            d.period("decided_us", g),
        ),
    );
    s += &d.write(
        o.out,
        "days",
        &format!("SELECT day, {count} AS n FROM dj GROUP BY day"),
    );
    let mut meta = vec![
        format!("('format', {})", q(FORMAT_VERSION)),
        format!("('period', {})", q(g.as_str())),
    ];
    meta.extend(
        o.unwatched
            .iter()
            .map(|c| format!("('unwatched', {})", q(c))),
    );
    s += &d.write(
        o.out,
        "meta",
        &format!(
            "SELECT * FROM (VALUES {}) AS t(key, value)",
            meta.join(", ")
        ),
    );
    s
}

fn string_type(d: Dialect) -> &'static str {
    match d {
        Dialect::DuckDb => "AS VARCHAR",
        Dialect::Spark => "AS STRING",
    }
}
