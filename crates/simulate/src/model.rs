//! The parameters of the simulated SOC: action classes, segments, analysts, review timing and
//! the planted effects. Every number the generator uses lives here, with the reason for it.

/// Impact tier of an action class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    Low,
    Medium,
    High,
    Critical,
}

impl Tier {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Medium => "medium",
            Tier::High => "high",
            Tier::Critical => "critical",
        }
    }
}

/// What a class acts on; decides the target name prefix and the target pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Host = 0,
    User = 1,
    Server = 2,
    Ip = 3,
}

impl Kind {
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::User => "user",
            Kind::Server => "srv",
            Kind::Ip => "ip",
        }
    }
}

/// One action class.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassSpec {
    pub name: &'static str,
    pub tier: Tier,
    pub kind: Kind,
    /// Runs autonomously today (`executed = true`, reviewed after the fact).
    pub hotl: bool,
    /// Relative volume (normalised over all classes).
    pub weight: f64,
    /// Mean confidence on a low-criticality, non-privileged target, before segment effects.
    pub conf_mean: f64,
    /// Beta concentration `a + b` of the confidence: larger is narrower.
    pub conf_kappa: f64,
    /// Share of decisions on low, medium, high, critical assets.
    pub criticality: [f64; 4],
    /// Base share of decisions on privileged targets, tilted per criticality by [`PRIV_TILT`]
    /// (so classes acting mostly on critical assets end up somewhat above it).
    pub privileged: f64,
    /// Among disagreements, the share that are `reject` (the rest are `override`).
    pub reject_share: f64,
    /// Share of decisions that never get a verdict row.
    pub unreviewed: f64,
}

const LOW_CRIT: [f64; 4] = [0.45, 0.33, 0.17, 0.05];
const USER_CRIT: [f64; 4] = [0.40, 0.35, 0.18, 0.07];

/// The class table. Low-impact classes dominate the volume; critical ones are rare but, at
/// 200k decisions a year, still several hundred each.
pub(crate) const CLASSES: [ClassSpec; 14] = [
    ClassSpec {
        name: "enrich_alert",
        tier: Tier::Low,
        kind: Kind::Host,
        hotl: true,
        weight: 0.380,
        conf_mean: 0.9945,
        conf_kappa: 150.0,
        criticality: LOW_CRIT,
        privileged: 0.05,
        reject_share: 0.3,
        unreviewed: 0.08,
    },
    ClassSpec {
        name: "tag_alert",
        tier: Tier::Low,
        kind: Kind::Host,
        hotl: true,
        weight: 0.170,
        conf_mean: 0.9935,
        conf_kappa: 140.0,
        criticality: LOW_CRIT,
        privileged: 0.05,
        reject_share: 0.3,
        unreviewed: 0.08,
    },
    ClassSpec {
        name: "add_to_watchlist",
        tier: Tier::Low,
        kind: Kind::Host,
        hotl: false,
        weight: 0.080,
        conf_mean: 0.9930,
        conf_kappa: 130.0,
        criticality: LOW_CRIT,
        privileged: 0.06,
        reject_share: 0.3,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "close_alert_benign",
        tier: Tier::Low,
        kind: Kind::Host,
        hotl: false,
        weight: 0.120,
        conf_mean: 0.952,
        conf_kappa: 400.0,
        criticality: LOW_CRIT,
        privileged: 0.05,
        reject_share: 0.4,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "quarantine_email",
        tier: Tier::Medium,
        kind: Kind::User,
        hotl: false,
        weight: 0.070,
        conf_mean: 0.905,
        conf_kappa: 60.0,
        criticality: USER_CRIT,
        privileged: 0.08,
        reject_share: 0.5,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "block_ip",
        tier: Tier::Medium,
        kind: Kind::Ip,
        hotl: true,
        weight: 0.060,
        conf_mean: 0.9915,
        conf_kappa: 200.0,
        criticality: LOW_CRIT,
        privileged: 0.05,
        reject_share: 0.5,
        unreviewed: 0.05,
    },
    ClassSpec {
        name: "reset_password",
        tier: Tier::Medium,
        kind: Kind::User,
        hotl: false,
        weight: 0.045,
        conf_mean: 0.975,
        conf_kappa: 120.0,
        criticality: USER_CRIT,
        privileged: 0.10,
        reject_share: 0.5,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "isolate_host",
        tier: Tier::High,
        kind: Kind::Host,
        hotl: false,
        weight: 0.022,
        conf_mean: 0.965,
        conf_kappa: 100.0,
        // Containment on critical assets is rarer than the alerts about them.
        criticality: [0.50, 0.32, 0.15, 0.03],
        privileged: 0.10,
        reject_share: 0.6,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "disable_account",
        tier: Tier::High,
        kind: Kind::User,
        hotl: false,
        weight: 0.016,
        conf_mean: 0.955,
        conf_kappa: 90.0,
        criticality: [0.48, 0.32, 0.16, 0.04],
        privileged: 0.12,
        reject_share: 0.6,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "kill_process",
        tier: Tier::High,
        kind: Kind::Host,
        hotl: false,
        weight: 0.020,
        conf_mean: 0.970,
        conf_kappa: 110.0,
        criticality: [0.45, 0.33, 0.18, 0.04],
        privileged: 0.08,
        reject_share: 0.6,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "isolate_production_server",
        tier: Tier::Critical,
        kind: Kind::Server,
        hotl: false,
        weight: 0.0045,
        conf_mean: 0.94,
        conf_kappa: 60.0,
        criticality: [0.0, 0.15, 0.55, 0.30],
        privileged: 0.09,
        reject_share: 0.7,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "revoke_privileged_access",
        tier: Tier::Critical,
        kind: Kind::User,
        hotl: false,
        weight: 0.0035,
        conf_mean: 0.93,
        conf_kappa: 50.0,
        criticality: [0.10, 0.30, 0.40, 0.20],
        // Revoking privileged access acts on privileged accounts by definition.
        privileged: 0.85,
        reject_share: 0.7,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "notify_breach",
        tier: Tier::Critical,
        kind: Kind::Server,
        hotl: false,
        weight: 0.0025,
        conf_mean: 0.91,
        conf_kappa: 40.0,
        criticality: [0.05, 0.25, 0.40, 0.30],
        privileged: 0.08,
        reject_share: 0.7,
        unreviewed: 0.035,
    },
    ClassSpec {
        name: "escalate_law_enforcement",
        tier: Tier::Critical,
        kind: Kind::Server,
        hotl: false,
        weight: 0.0020,
        conf_mean: 0.89,
        conf_kappa: 35.0,
        criticality: [0.05, 0.25, 0.40, 0.30],
        privileged: 0.08,
        reject_share: 0.7,
        unreviewed: 0.035,
    },
];

/// Class indices the planted effects refer to (checked against [`CLASSES`] in tests).
pub(crate) const CLOSE_ALERT_BENIGN: usize = 3;
pub(crate) const QUARANTINE_EMAIL: usize = 4;
pub(crate) const BLOCK_IP: usize = 5;
pub(crate) const ISOLATE_HOST: usize = 7;

/// Model versions, in release order.
pub(crate) const MODEL_VERSIONS: [&str; 3] = ["v1", "v2", "v3"];

// --- segments -------------------------------------------------------------------------------

/// Segment effect on the disagreement rate `1 − E[c]` per asset criticality: the agent is
/// less sure, and analysts agree less, on critical assets.
pub(crate) const CRIT_DISAGREEMENT: [f64; 4] = [0.9, 1.0, 1.3, 1.7];
/// Segment effect on the disagreement rate for privileged targets.
pub(crate) const PRIV_DISAGREEMENT: f64 = 1.6;
/// Privileged targets concentrate on critical assets: `P(priv | crit) = priv · tilt[crit]`.
pub(crate) const PRIV_TILT: [f64; 4] = [0.7, 1.0, 1.5, 2.0];

/// Target pool segments: share of a pool's targets with each criticality, and within each the
/// share that is privileged. Targets keep their criticality and privilege for the whole year.
pub(crate) const POOL_CRIT: [f64; 4] = [0.55, 0.28, 0.13, 0.04];
pub(crate) const POOL_PRIV: [f64; 4] = [0.04, 0.06, 0.12, 0.25];

// --- planted effects ------------------------------------------------------------------------

/// Effect 1: `close_alert_benign` approve probability is the confidence minus this.
pub(crate) const OVERCONFIDENCE_GAP: f64 = 0.095;
/// Effect 2: under v3, `block_ip` approve probability is the confidence minus this.
pub(crate) const V3_BLOCK_IP_DROP: f64 = 0.06;
/// Effect 3: from this month (0-based), `quarantine_email` reports `latent · scale`.
pub(crate) const SHIFT_MONTH: usize = 6;
pub(crate) const SHIFT_SCALE: f64 = 0.80 / 0.905;
/// Effect 4: burst month (0-based), first day of month (1-based), number of days.
pub(crate) const BURST_MONTH: usize = 9;
pub(crate) const BURST_FIRST_DAY: u32 = 13;
pub(crate) const BURST_DAYS: u32 = 5;
/// Burst volume per day, as a multiple of the normal daily `isolate_host` volume (so a burst
/// day carries about seven times a normal day), with a floor for tiny simulations.
pub(crate) const BURST_MULTIPLE: f64 = 6.0;
pub(crate) const BURST_MIN_PER_DAY: u32 = 20;
/// Burst targets: (criticality, privileged, share of burst decisions).
pub(crate) const BURST_HOSTS: [(u8, bool, f64); 5] = [
    (3, true, 0.30),
    (3, true, 0.25),
    (2, true, 0.20),
    (3, false, 0.15),
    (2, true, 0.10),
];
/// Burst confidence: `0.95 + 0.05 · Beta(6, 2)`, always at least 0.95.
pub(crate) const BURST_MIN_CONFIDENCE: f64 = 0.95;
/// Burst verdicts of ordinary analysts: approve, override, reject.
pub(crate) const BURST_VERDICTS: [f64; 3] = [0.12, 0.08, 0.80];
/// Effect 5: v2 decisions citing an invented ID / a revoked ID.
pub(crate) const INVENTED_SHARE: f64 = 0.06;
pub(crate) const REVOKED_SHARE: f64 = 0.04;
/// The fabricating version (index into [`MODEL_VERSIONS`]).
pub(crate) const FABRICATING_VERSION: u8 = 1;

// --- traffic --------------------------------------------------------------------------------

/// Weekend days carry this share of a weekday's volume.
pub(crate) const WEEKEND_WEIGHT: f64 = 0.65;
/// Day-to-day volume noise (relative standard deviation).
pub(crate) const DAY_NOISE: f64 = 0.05;
/// Share of decisions in business hours (07:00–19:00 UTC); the rest spread over the day.
pub(crate) const BUSINESS_HOURS_SHARE: f64 = 0.55;
/// Canary: in the last `CANARY_DAYS` days before a version switch, this share of decisions
/// already runs on the new version (about 2% of that month).
pub(crate) const CANARY_DAYS: u32 = 7;
pub(crate) const CANARY_SHARE: f64 = 0.10;
/// Techniques cited per decision: P(0), P(1), P(2), P(3).
pub(crate) const TECHNIQUE_COUNT_CDF: [f64; 4] = [0.15, 0.60, 0.88, 1.0];
/// Each class mostly cites techniques from its own repertoire of this size.
pub(crate) const REPERTOIRE: usize = 25;
pub(crate) const REPERTOIRE_SHARE: f64 = 0.8;

// --- review ---------------------------------------------------------------------------------

/// Analyst workload weights; analyst index [`RUBBER_STAMPER`] approves in seconds.
pub(crate) const ANALYST_WEIGHTS: [f64; 15] = [
    1.4, 1.3, 1.2, 1.15, 1.1, 1.05, 1.0, 1.0, 0.95, 0.9, 0.9, 0.85, 0.8, 0.7, 0.6,
];
pub(crate) const RUBBER_STAMPER: usize = 6;
/// Share of the rubber stamper's reviews that are approvals within seconds, whatever the case.
pub(crate) const RUBBER_STAMP_SHARE: f64 = 0.95;
pub(crate) const RUBBER_STAMP_SECONDS: (f64, f64) = (2.0, 8.0);
/// Share of decisions whose final verdict is a timeout.
pub(crate) const TIMEOUT_SHARE: f64 = 0.02;
/// Share of reviewed decisions with two verdict rows.
pub(crate) const DOUBLE_SHARE: f64 = 0.021;
/// Review SLA in minutes (a timeout is recorded when it expires): hitl, hotl.
pub(crate) const SLA_MINUTES: (f64, f64) = (240.0, 1440.0);
/// Log-normal review delay: median minutes and σ, hitl then hotl.
pub(crate) const DELAY_HITL: (f64, f64) = (18.0, 0.9);
pub(crate) const DELAY_HOTL: (f64, f64) = (90.0, 1.0);
/// Second review after a timeout / after an approval that is later overridden.
pub(crate) const DELAY_AFTER_TIMEOUT: (f64, f64) = (30.0, 0.8);
pub(crate) const DELAY_AFTER_APPROVE: (f64, f64) = (120.0, 0.7);
