//! The generator: per-run tables built once by [`Simulator::new`], and the per-month pass that
//! fills the columns.

use crate::attack::Techniques;
use crate::calendar::{add_months, days_from_civil, days_in_month, weekday, DAY_US};
use crate::model::*;
use crate::rng::Rng;
use crate::TIMEOUT;
use crate::{DecisionChunk, Dictionaries, SimConfig, VerdictChunk, APPROVE, OVERRIDE, REJECT};

const MINUTE_US: f64 = 60_000_000.0;
const SECOND_US: f64 = 1_000_000.0;

/// Random stream numbers: one per month, one per class for its technique repertoire.
const STREAM_MONTH: u64 = 1;
const STREAM_REPERTOIRE: u64 = 1 << 32;

/// A target pool: eight contiguous ranges of target numbers, one per segment
/// `criticality * 2 + privileged`.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub(crate) size: u32,
    pub(crate) ranges: [(u32, u32); 8],
}

impl Pool {
    fn new(size: u32) -> Self {
        let mut ranges = [(0, 0); 8];
        let mut start = 0u32;
        for (crit, (&fc, &fp)) in POOL_CRIT.iter().zip(&POOL_PRIV).enumerate() {
            for privileged in [false, true] {
                let share = fc * if privileged { fp } else { 1.0 - fp };
                // At least a few targets per segment so no segment is a single machine.
                let len = ((f64::from(size) * share).round() as u32).max(4);
                ranges[crit * 2 + usize::from(privileged)] = (start, len);
                start += len;
            }
        }
        Pool {
            size: start,
            ranges,
        }
    }

    fn pick(&self, segment: usize, rng: &mut Rng) -> u32 {
        let (start, len) = self.ranges[segment];
        start + rng.below(u64::from(len)) as u32
    }
}

/// Per-class tables derived from [`ClassSpec`].
#[derive(Debug, Clone)]
pub(crate) struct ClassTables {
    /// Cumulative distribution over segments `criticality * 2 + privileged`.
    pub(crate) segment_cdf: [f64; 8],
    /// Probability of each segment.
    pub(crate) segment_p: [f64; 8],
    /// Mean (latent) confidence per segment.
    pub(crate) segment_mean: [f64; 8],
    /// Beta parameters of the confidence per segment.
    segment_beta: [(f64, f64); 8],
    /// Technique indices this class mostly cites.
    repertoire: Vec<u16>,
}

impl ClassTables {
    fn new(spec: &ClassSpec, repertoire: Vec<u16>) -> Self {
        let mut segment_p = [0.0; 8];
        for crit in 0..4 {
            let p_priv = (spec.privileged * PRIV_TILT[crit]).min(1.0);
            segment_p[crit * 2] = spec.criticality[crit] * (1.0 - p_priv);
            segment_p[crit * 2 + 1] = spec.criticality[crit] * p_priv;
        }
        let total: f64 = segment_p.iter().sum();
        let mut segment_cdf = [0.0; 8];
        let mut acc = 0.0;
        for (s, p) in segment_p.iter_mut().enumerate() {
            *p /= total;
            acc += *p;
            segment_cdf[s] = acc;
        }
        segment_cdf[7] = 1.0;
        let mut segment_mean = [0.0; 8];
        let mut segment_beta = [(0.0, 0.0); 8];
        for s in 0..8 {
            let mult = CRIT_DISAGREEMENT[s / 2] * if s % 2 == 1 { PRIV_DISAGREEMENT } else { 1.0 };
            let mean = 1.0 - (1.0 - spec.conf_mean) * mult;
            segment_mean[s] = mean;
            segment_beta[s] = (mean * spec.conf_kappa, (1.0 - mean) * spec.conf_kappa);
        }
        ClassTables {
            segment_cdf,
            segment_p,
            segment_mean,
            segment_beta,
            repertoire,
        }
    }

    /// Expected latent confidence over the class's segment mix.
    pub(crate) fn mean_confidence(&self) -> f64 {
        self.segment_p
            .iter()
            .zip(&self.segment_mean)
            .map(|(p, m)| p * m)
            .sum()
    }

    /// Share of decisions on privileged targets.
    pub(crate) fn privileged_share(&self) -> f64 {
        (0..4).map(|c| self.segment_p[c * 2 + 1]).sum()
    }
}

/// What the configuration fixes about one month before any random draw.
#[derive(Debug, Clone)]
pub(crate) struct MonthPlan {
    pub(crate) year: i32,
    pub(crate) month: u32,
    /// Day number (since 1970-01-01) of the 1st.
    pub(crate) first_day: i64,
    pub(crate) days: u32,
    pub(crate) first_index: u64,
    /// Decisions of the ordinary traffic.
    pub(crate) regular: u64,
    /// Burst decisions per burst day (0 outside the burst month).
    pub(crate) burst_per_day: u32,
    /// Model version index of the month.
    pub(crate) version: u8,
    /// Version of the canary running in the last days, if a switch follows.
    pub(crate) canary: Option<u8>,
}

impl MonthPlan {
    pub(crate) fn len(&self) -> u64 {
        self.regular + u64::from(self.burst_per_day) * u64::from(BURST_DAYS)
    }

    fn is_burst_day(&self, day: u32) -> bool {
        self.burst_per_day > 0
            && day + 1 >= BURST_FIRST_DAY
            && day + 1 < BURST_FIRST_DAY + BURST_DAYS
    }
}

/// How a decision's final verdict is decided.
#[derive(Debug, Clone, Copy)]
enum Judgement {
    /// Ordinary: approve with this probability.
    Approve(f64),
    /// A burst decision: approve / override / reject with [`BURST_VERDICTS`].
    Burst,
}

/// One verdict row before columnisation.
#[derive(Debug, Clone, Copy)]
struct VerdictRow {
    reviewed_at_us: i64,
    decision_index: u64,
    analyst: u16,
    verdict: u8,
}

/// The simulator: built once from a [`SimConfig`], then asked for months.
#[derive(Debug, Clone)]
pub struct Simulator {
    pub(crate) cfg: SimConfig,
    pub(crate) dict: Dictionaries,
    pub(crate) techniques: Techniques,
    /// Index in the technique dictionary of the first revoked / first invented ID.
    revoked_base: u16,
    invented_base: u16,
    pub(crate) class_share: [f64; 14],
    class_cdf: [f64; 14],
    pub(crate) tables: Vec<ClassTables>,
    pub(crate) pools: [Pool; 4],
    pub(crate) plans: Vec<MonthPlan>,
    analyst_cdf: [f64; 15],
    /// The same without the rubber stamper, for second opinions.
    senior_cdf: [f64; 15],
    burst_cdf: [f64; 5],
}

impl Simulator {
    /// Builds the run's tables (class mix, target pools, month sizes, technique repertoires).
    ///
    /// # Panics
    ///
    /// If `cfg.months` is 0, `cfg.start_month` is not in 1..=12, or the configuration asks for
    /// more than `u32::MAX` decisions in one month.
    pub fn new(cfg: SimConfig) -> Self {
        assert!(cfg.months >= 1, "SimConfig::months must be at least 1");
        assert!(
            (1..=12).contains(&cfg.start_month),
            "SimConfig::start_month must be in 1..=12, got {}",
            cfg.start_month
        );
        let techniques = Techniques::bundled();
        let n_current = techniques.current.len();
        let revoked_base = n_current as u16;
        let invented_base = (n_current + techniques.revoked.len()) as u16;
        let dict = Dictionaries {
            classes: CLASSES.iter().map(|c| c.name.to_string()).collect(),
            model_versions: MODEL_VERSIONS.iter().map(|v| v.to_string()).collect(),
            techniques: techniques
                .current
                .iter()
                .chain(&techniques.revoked)
                .chain(&techniques.invented)
                .cloned()
                .collect(),
            analysts: (1..=ANALYST_WEIGHTS.len())
                .map(|i| format!("analyst-{i:02}"))
                .collect(),
        };

        let total_weight: f64 = CLASSES.iter().map(|c| c.weight).sum();
        let mut class_share = [0.0; 14];
        let mut class_cdf = [0.0; 14];
        let mut acc = 0.0;
        for (i, c) in CLASSES.iter().enumerate() {
            class_share[i] = c.weight / total_weight;
            acc += class_share[i];
            class_cdf[i] = acc;
        }
        class_cdf[13] = 1.0;

        let tables = CLASSES
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let mut rng = Rng::stream(cfg.seed, STREAM_REPERTOIRE + i as u64);
                let mut repertoire: Vec<u16> = Vec::with_capacity(REPERTOIRE);
                while repertoire.len() < REPERTOIRE.min(n_current) {
                    let t = rng.below(n_current as u64) as u16;
                    if !repertoire.contains(&t) {
                        repertoire.push(t);
                    }
                }
                ClassTables::new(spec, repertoire)
            })
            .collect();

        // Pools scale with the volume so per-target repetition stays realistic.
        let d = cfg.decisions;
        let pool_size = |per: u64, lo: u64, hi: u64| (d / per).clamp(lo, hi) as u32;
        let pools = [
            Pool::new(pool_size(50, 2_000, 2_000_000)),
            Pool::new(pool_size(80, 1_000, 1_000_000)),
            Pool::new(pool_size(2_000, 200, 50_000)),
            Pool::new(pool_size(20, 5_000, 5_000_000)),
        ];

        let plans = plan_months(&cfg, class_share[ISOLATE_HOST]);

        let cdf = |weights: &[f64; 15]| {
            let total: f64 = weights.iter().sum();
            let mut cdf = [0.0; 15];
            let mut acc = 0.0;
            for (c, w) in cdf.iter_mut().zip(weights) {
                acc += w / total;
                *c = acc;
            }
            cdf[14] = 1.0;
            cdf
        };
        let mut senior = ANALYST_WEIGHTS;
        senior[RUBBER_STAMPER] = 0.0;
        let mut burst_cdf = [0.0; 5];
        let mut acc = 0.0;
        for (c, h) in burst_cdf.iter_mut().zip(&BURST_HOSTS) {
            acc += h.2;
            *c = acc;
        }
        burst_cdf[4] = 1.0;

        Simulator {
            cfg,
            dict,
            techniques,
            revoked_base,
            invented_base,
            class_share,
            class_cdf,
            tables,
            pools,
            plans,
            analyst_cdf: cdf(&ANALYST_WEIGHTS),
            senior_cdf: cdf(&senior),
            burst_cdf,
        }
    }

    /// The strings behind the chunks' index columns.
    pub fn dictionaries(&self) -> &Dictionaries {
        &self.dict
    }

    /// The configuration this simulator was built from.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Number of simulated months.
    pub fn months(&self) -> usize {
        self.plans.len()
    }

    /// Number of decisions of month `m`, known without generating it.
    ///
    /// # Panics
    ///
    /// If `m >= self.months()`.
    pub fn month_len(&self, m: usize) -> u64 {
        self.plans[m].len()
    }

    /// Global index of month `m`'s first decision (the sum of the previous months' sizes).
    ///
    /// # Panics
    ///
    /// If `m >= self.months()`.
    pub fn month_first_index(&self, m: usize) -> u64 {
        self.plans[m].first_index
    }

    /// `(year, month)` of month `m`.
    ///
    /// # Panics
    ///
    /// If `m >= self.months()`.
    pub fn month_date(&self, m: usize) -> (i32, u32) {
        (self.plans[m].year, self.plans[m].month)
    }

    /// Total number of decisions over all months.
    pub fn total_decisions(&self) -> u64 {
        self.plans.iter().map(MonthPlan::len).sum()
    }

    /// Burst host target numbers (outside every pool, so seen nowhere else).
    pub(crate) fn burst_targets(&self) -> [u32; 5] {
        let base = self.pools[Kind::Host as usize].size + 1;
        [base, base + 7, base + 19, base + 23, base + 42]
    }

    /// Generates month `m`: its decisions in time order and the verdicts on them.
    /// Deterministic in `(seed, m)` and independent of every other month.
    ///
    /// # Panics
    ///
    /// If `m >= self.months()`.
    pub fn month(&self, m: usize) -> (DecisionChunk, VerdictChunk) {
        let plan = &self.plans[m];
        let mut rng = Rng::stream(self.cfg.seed, STREAM_MONTH + m as u64);
        let rows = plan.len() as usize;
        let mut chunk = DecisionChunk::with_capacity(plan.first_index, rows);
        let mut verdicts: Vec<VerdictRow> = Vec::with_capacity(rows);

        // Daily volumes: weekday/weekend weights with a little noise, split exactly.
        let weights: Vec<f64> = (0..plan.days)
            .map(|day| {
                let base = if weekday(plan.first_day + i64::from(day)) >= 5 {
                    WEEKEND_WEIGHT
                } else {
                    1.0
                };
                base * (1.0 + DAY_NOISE * rng.normal()).max(0.5)
            })
            .collect();
        let total_weight: f64 = weights.iter().sum();
        let mut cum = 0.0;
        let mut allocated = 0u64;
        let mut times: Vec<(i64, bool)> = Vec::new();
        let mut index = plan.first_index;
        for day in 0..plan.days {
            cum += weights[day as usize];
            let upto = if day + 1 == plan.days {
                plan.regular
            } else {
                ((plan.regular as f64) * cum / total_weight).floor() as u64
            };
            let count = upto.saturating_sub(allocated);
            allocated += count;

            let day_us = (plan.first_day + i64::from(day)) * DAY_US;
            times.clear();
            for _ in 0..count {
                let tod = if rng.bernoulli(BUSINESS_HOURS_SHARE) {
                    (7.0 + 12.0 * rng.uniform()) / 24.0
                } else {
                    rng.uniform()
                };
                times.push((day_us + (tod * DAY_US as f64) as i64, false));
            }
            if plan.is_burst_day(day) {
                for _ in 0..plan.burst_per_day {
                    times.push((day_us + rng.below(DAY_US as u64) as i64, true));
                }
            }
            times.sort_unstable();
            let canary = plan.canary.filter(|_| day + CANARY_DAYS >= plan.days);
            for &(t, burst) in &times {
                if burst {
                    self.burst_decision(&mut rng, plan, index, t, &mut chunk, &mut verdicts);
                } else {
                    let version = match canary {
                        Some(next) if rng.bernoulli(CANARY_SHARE) => next,
                        _ => plan.version,
                    };
                    self.regular_decision(
                        &mut rng,
                        m,
                        version,
                        index,
                        t,
                        &mut chunk,
                        &mut verdicts,
                    );
                }
                index += 1;
            }
        }
        debug_assert_eq!(index - plan.first_index, plan.len());

        verdicts.sort_unstable_by_key(|v| (v.reviewed_at_us, v.decision_index));
        let mut out = VerdictChunk {
            decision_index: Vec::with_capacity(verdicts.len()),
            reviewed_at_us: Vec::with_capacity(verdicts.len()),
            analyst: Vec::with_capacity(verdicts.len()),
            verdict: Vec::with_capacity(verdicts.len()),
        };
        for v in verdicts {
            out.decision_index.push(v.decision_index);
            out.reviewed_at_us.push(v.reviewed_at_us);
            out.analyst.push(v.analyst);
            out.verdict.push(v.verdict);
        }
        (chunk, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn regular_decision(
        &self,
        rng: &mut Rng,
        m: usize,
        version: u8,
        index: u64,
        t: i64,
        chunk: &mut DecisionChunk,
        verdicts: &mut Vec<VerdictRow>,
    ) {
        let class = rng.categorical(&self.class_cdf);
        let spec = &CLASSES[class];
        let tables = &self.tables[class];
        let segment = rng.categorical(&tables.segment_cdf);
        let target = self.pools[spec.kind as usize].pick(segment, rng);
        let (a, b) = tables.segment_beta[segment];
        let latent = rng.beta(a, b);
        let (confidence, p_approve) = match class {
            CLOSE_ALERT_BENIGN => (latent, latent - OVERCONFIDENCE_GAP),
            BLOCK_IP if version == 2 => (latent, latent - V3_BLOCK_IP_DROP),
            QUARANTINE_EMAIL if m >= SHIFT_MONTH => (latent * SHIFT_SCALE, latent),
            _ => (latent, latent),
        };
        self.push_decision(
            rng,
            chunk,
            t,
            class,
            confidence,
            version,
            (segment / 2) as u8,
            segment % 2 == 1,
            target,
        );
        self.push_verdicts(rng, verdicts, index, t, spec, Judgement::Approve(p_approve));
    }

    fn burst_decision(
        &self,
        rng: &mut Rng,
        plan: &MonthPlan,
        index: u64,
        t: i64,
        chunk: &mut DecisionChunk,
        verdicts: &mut Vec<VerdictRow>,
    ) {
        let host = rng.categorical(&self.burst_cdf);
        let (criticality, privileged, _) = BURST_HOSTS[host];
        let confidence = BURST_MIN_CONFIDENCE + (1.0 - BURST_MIN_CONFIDENCE) * rng.beta(6.0, 2.0);
        self.push_decision(
            rng,
            chunk,
            t,
            ISOLATE_HOST,
            confidence,
            plan.version,
            criticality,
            privileged,
            self.burst_targets()[host],
        );
        self.push_verdicts(
            rng,
            verdicts,
            index,
            t,
            &CLASSES[ISOLATE_HOST],
            Judgement::Burst,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push_decision(
        &self,
        rng: &mut Rng,
        chunk: &mut DecisionChunk,
        t: i64,
        class: usize,
        confidence: f64,
        version: u8,
        criticality: u8,
        privileged: bool,
        target: u32,
    ) {
        chunk.decided_at_us.push(t);
        chunk.class.push(class as u16);
        chunk.confidence.push(confidence.clamp(0.0, 1.0));
        chunk.model_version.push(version);
        chunk.criticality.push(criticality);
        chunk.privileged.push(privileged);
        chunk.target.push(target);
        chunk.executed.push(CLASSES[class].hotl);

        // Techniques: 0–3 distinct IDs, mostly from the class repertoire; the fabricating
        // version swaps one of them for an invented or a revoked ID.
        let mut k = rng.categorical(&TECHNIQUE_COUNT_CDF);
        let fabrication = if version == FABRICATING_VERSION && self.cfg.fabricated_reasoning {
            let u = rng.uniform();
            if u < INVENTED_SHARE && !self.techniques.invented.is_empty() {
                Some((self.invented_base, self.techniques.invented.len()))
            } else if u < INVENTED_SHARE + REVOKED_SHARE && !self.techniques.revoked.is_empty() {
                Some((self.revoked_base, self.techniques.revoked.len()))
            } else {
                None
            }
        } else {
            None
        };
        if fabrication.is_some() {
            k = k.max(1);
        }
        let repertoire = &self.tables[class].repertoire;
        let n_current = u64::from(self.revoked_base);
        let start = chunk.technique_ids.len();
        for _ in 0..k {
            // A few retries keep the IDs of one decision distinct without an unbounded loop.
            for _ in 0..4 {
                let id = if rng.bernoulli(REPERTOIRE_SHARE) {
                    repertoire[rng.below(repertoire.len() as u64) as usize]
                } else {
                    rng.below(n_current) as u16
                };
                if !chunk.technique_ids[start..].contains(&id) {
                    chunk.technique_ids.push(id);
                    break;
                }
            }
        }
        if let Some((base, len)) = fabrication {
            let cited = chunk.technique_ids.len() - start;
            let slot = start + rng.below(cited as u64) as usize;
            chunk.technique_ids[slot] = base + rng.below(len as u64) as u16;
        }
        chunk
            .technique_offsets
            .push(chunk.technique_ids.len() as u32);
    }

    fn pick_analyst(&self, rng: &mut Rng, senior: bool) -> u16 {
        let cdf = if senior {
            &self.senior_cdf
        } else {
            &self.analyst_cdf
        };
        rng.categorical(cdf) as u16
    }

    /// A log-normal delay in µs, redrawn until it falls before `limit_minutes`.
    fn delay_us(rng: &mut Rng, (median, sigma): (f64, f64), limit_minutes: f64) -> i64 {
        let mut minutes = rng.lognormal(median, sigma);
        for _ in 0..16 {
            if minutes < limit_minutes {
                break;
            }
            minutes = rng.lognormal(median, sigma);
        }
        // At least one second: nobody reviews a decision before it exists.
        ((minutes.min(limit_minutes * 0.99) * MINUTE_US) as i64).max(SECOND_US as i64)
    }

    fn push_verdicts(
        &self,
        rng: &mut Rng,
        out: &mut Vec<VerdictRow>,
        index: u64,
        t: i64,
        spec: &ClassSpec,
        judgement: Judgement,
    ) {
        let row = |reviewed_at_us: i64, analyst: u16, verdict: u8| VerdictRow {
            reviewed_at_us,
            decision_index: index,
            analyst,
            verdict,
        };
        let (sla, delay) = if spec.hotl {
            (SLA_MINUTES.1, DELAY_HOTL)
        } else {
            (SLA_MINUTES.0, DELAY_HITL)
        };
        let sla_us = (sla * MINUTE_US) as i64;
        let u = rng.uniform();
        if u < spec.unreviewed {
            return;
        }
        let analyst = self.pick_analyst(rng, false);
        if u < spec.unreviewed + TIMEOUT_SHARE {
            out.push(row(t + sla_us, analyst, TIMEOUT));
            return;
        }

        let (verdict, at) =
            if usize::from(analyst) == RUBBER_STAMPER && rng.bernoulli(RUBBER_STAMP_SHARE) {
                let (lo, hi) = RUBBER_STAMP_SECONDS;
                let seconds = lo + (hi - lo) * rng.uniform();
                (APPROVE, t + (seconds * SECOND_US) as i64)
            } else {
                let verdict = match judgement {
                    Judgement::Approve(p) => {
                        if rng.bernoulli(p) {
                            APPROVE
                        } else if rng.bernoulli(spec.reject_share) {
                            REJECT
                        } else {
                            OVERRIDE
                        }
                    }
                    Judgement::Burst => match rng.categorical(&[
                        BURST_VERDICTS[0],
                        BURST_VERDICTS[0] + BURST_VERDICTS[1],
                        1.0,
                    ]) {
                        0 => APPROVE,
                        1 => OVERRIDE,
                        _ => REJECT,
                    },
                };
                (verdict, t + Self::delay_us(rng, delay, sla))
            };

        if rng.bernoulli(DOUBLE_SHARE) {
            let second = self.pick_analyst(rng, true);
            if verdict != APPROVE && rng.bernoulli(0.5) {
                // Approved first, then overridden or rejected on a second look.
                let first_at = t + Self::delay_us(rng, delay, sla);
                let later = Self::delay_us(rng, DELAY_AFTER_APPROVE, 1440.0);
                out.push(row(first_at, analyst, APPROVE));
                out.push(row(first_at + later, second, verdict));
            } else {
                // Timed out first, reviewed afterwards.
                let later = Self::delay_us(rng, DELAY_AFTER_TIMEOUT, 1440.0);
                out.push(row(t + sla_us, analyst, TIMEOUT));
                out.push(row(t + sla_us + later, second, verdict));
            }
        } else {
            out.push(row(at, analyst, verdict));
        }
    }
}

/// Month sizes, versions and the burst, from the configuration alone.
fn plan_months(cfg: &SimConfig, isolate_share: f64) -> Vec<MonthPlan> {
    let months = cfg.months as usize;
    let dates: Vec<(i32, u32)> = (0..cfg.months)
        .map(|k| add_months(cfg.start_year, cfg.start_month, k))
        .collect();
    let days: Vec<u32> = dates.iter().map(|&(y, m)| days_in_month(y, m)).collect();
    let total_days: u64 = days.iter().map(|&d| u64::from(d)).sum();
    let version = |m: usize| ((m * 3) / months).min(2) as u8;
    let burst_month = cfg.burst.then(|| BURST_MONTH.min(months - 1));

    let mut plans = Vec::with_capacity(months);
    let mut cum_days = 0u64;
    let mut first_index = 0u64;
    for m in 0..months {
        // Cumulative rounding: the regular sizes sum exactly to `cfg.decisions`.
        let before = u128::from(cfg.decisions) * u128::from(cum_days) / u128::from(total_days);
        cum_days += u64::from(days[m]);
        let after = u128::from(cfg.decisions) * u128::from(cum_days) / u128::from(total_days);
        let regular = (after - before) as u64;
        assert!(
            regular < u64::from(u32::MAX) / 2,
            "too many decisions per month for 32-bit technique offsets"
        );
        let burst_per_day = if burst_month == Some(m) {
            let normal_daily = regular as f64 / f64::from(days[m]) * isolate_share;
            ((BURST_MULTIPLE * normal_daily).round() as u32).max(BURST_MIN_PER_DAY)
        } else {
            0
        };
        let v = version(m);
        let canary = (m + 1 < months && version(m + 1) != v).then(|| version(m + 1));
        let (year, month) = dates[m];
        let plan = MonthPlan {
            year,
            month,
            first_day: days_from_civil(year, month, 1),
            days: days[m],
            first_index,
            regular,
            burst_per_day,
            version: v,
            canary,
        };
        first_index += plan.len();
        plans.push(plan);
    }
    plans
}

/// Checks that the class constants the planted effects use point at the right classes.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_class_indices() {
        assert_eq!(CLASSES[CLOSE_ALERT_BENIGN].name, "close_alert_benign");
        assert_eq!(CLASSES[QUARANTINE_EMAIL].name, "quarantine_email");
        assert_eq!(CLASSES[BLOCK_IP].name, "block_ip");
        assert_eq!(CLASSES[ISOLATE_HOST].name, "isolate_host");
        assert_eq!(MODEL_VERSIONS[usize::from(FABRICATING_VERSION)], "v2");
        assert_eq!(crate::VERDICTS[usize::from(TIMEOUT)], "timeout");
    }

    #[test]
    fn sizes_are_known_before_generating() {
        let sim = Simulator::new(SimConfig {
            decisions: 20_000,
            ..SimConfig::default()
        });
        let mut next = 0;
        for m in 0..sim.months() {
            assert_eq!(sim.month_first_index(m), next);
            let (d, _) = sim.month(m);
            assert_eq!(d.first_index, next);
            assert_eq!(d.len() as u64, sim.month_len(m));
            next += sim.month_len(m);
        }
        assert_eq!(next, sim.total_decisions());
    }

    #[test]
    fn versions_and_canaries_follow_the_thirds() {
        let sim = Simulator::new(SimConfig::default());
        let versions: Vec<u8> = sim.plans.iter().map(|p| p.version).collect();
        assert_eq!(versions, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        let canaries: Vec<Option<u8>> = sim.plans.iter().map(|p| p.canary).collect();
        assert_eq!(canaries[3], Some(1));
        assert_eq!(canaries[7], Some(2));
        assert_eq!(canaries.iter().filter(|c| c.is_some()).count(), 2);
    }

    #[test]
    fn pools_partition_targets() {
        let pool = Pool::new(4_000);
        let mut next = 0;
        for (start, len) in pool.ranges {
            assert_eq!(start, next);
            assert!(len >= 4);
            next += len;
        }
        assert_eq!(next, pool.size);
    }

    #[test]
    fn target_attributes_are_fixed_per_target() {
        let sim = Simulator::new(SimConfig {
            decisions: 30_000,
            ..SimConfig::default()
        });
        let mut seen = std::collections::BTreeMap::new();
        for m in 0..sim.months() {
            let (d, _) = sim.month(m);
            for i in 0..d.len() {
                let kind = CLASSES[usize::from(d.class[i])].kind as u8;
                let attrs = (d.criticality[i], d.privileged[i]);
                let prev = seen.entry((kind, d.target[i])).or_insert(attrs);
                assert_eq!(*prev, attrs);
            }
        }
    }
}
