//! The durability model behind `cairn durability`: the probability that erasure-coded data is
//! lost within a year, from a continuous-time Markov chain per stripe.
//!
//! # Model
//!
//! One stripe of a `k+m` scheme has its `k+m` shards on distinct nodes. State `i` (0 ≤ i ≤ m+1)
//! is the number of shards currently lost; state `m+1` (more than m lost) is data loss and
//! absorbing. Node failures are independent with a constant rate `λ = −ln(1 − AFR) / 8760` per
//! hour (an annualised failure rate AFR turned into a Poisson rate), so from state `i` the chain
//! moves to `i+1` at `(k+m−i)·λ`. Repair (the healer) rebuilds lost shards onto other nodes; each
//! lost shard is rebuilt independently in `rebuild_hours` on average, so from state `i ≥ 1` the
//! chain moves to `i−1` at `i / rebuild_hours` ([`RepairModel::Parallel`]), or at
//! `1 / rebuild_hours` when repairs are serialised ([`RepairModel::Serial`], the conservative
//! choice).
//!
//! The probability of loss within `t` hours starting from a healthy stripe is computed exactly by
//! uniformisation (the chain has m+2 states, so the Poisson-weighted sum of powers of the
//! uniformised transition matrix is cheap); all terms are non-negative, so probabilities as small
//! as 1e-300 keep their precision. The mean time to data loss (MTTDL) solves the chain's
//! absorption-time equations.
//!
//! A cluster of `N` nodes spreads stripes over many `(k+m)`-node sets. With random placement and
//! enough objects every one of the `C(N, k+m)` sets holds some stripe, and any set losing more
//! than `m` members loses data; the cluster-wide figure treats the sets as independent (a union
//! bound: it overstates loss when sets overlap, so it is conservative).
//!
//! # Assumptions stated with every result
//!
//! Independent failures (no correlated AZ or rack loss: placement's "≤ m shards per AZ" rule is
//! what makes a whole-AZ loss survivable and is outside this model), constant AFR, exponential
//! repair times, no latent sector errors beyond what the scrubber finds within the rebuild time.

/// How concurrent repairs of one stripe proceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepairModel {
    /// Every lost shard is rebuilt at the same time (Cairn's healer rebuilds per shard, spread
    /// over all surviving nodes).
    Parallel,
    /// One shard at a time.
    Serial,
}

/// Inputs of the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DurabilityInput {
    pub data_shards: u32,
    pub parity_shards: u32,
    /// Storage nodes in the cluster.
    pub nodes: u32,
    /// Annualised failure rate of one node, e.g. 0.02.
    pub annual_failure_rate: f64,
    /// Mean time to rebuild one lost shard, in hours.
    pub rebuild_hours: f64,
    pub repair: RepairModel,
}

/// Outputs of the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DurabilityReport {
    /// Probability that one stripe (one object's worth of shards) is lost within a year.
    pub stripe_annual_loss_probability: f64,
    /// `−log10` of the above.
    pub stripe_nines: f64,
    /// Mean time to data loss of one stripe, in years.
    pub stripe_mttdl_years: f64,
    /// Distinct `(k+m)`-node sets in the cluster, `C(N, k+m)`.
    pub placement_groups: f64,
    /// Probability that the cluster loses any data within a year (union bound over the sets).
    pub cluster_annual_loss_probability: f64,
    pub cluster_nines: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DurabilityError {
    #[error("invalid input: {0}")]
    Invalid(String),
}

const HOURS_PER_YEAR: f64 = 8760.0;

/// Runs the model (see the module header).
pub fn annual_loss(input: &DurabilityInput) -> Result<DurabilityReport, DurabilityError> {
    let total = input.data_shards + input.parity_shards;
    if input.data_shards == 0 {
        return Err(DurabilityError::Invalid("k must be at least 1".into()));
    }
    if input.nodes < total {
        return Err(DurabilityError::Invalid(format!(
            "{} nodes cannot hold {total} shards on distinct nodes",
            input.nodes
        )));
    }
    if !(input.annual_failure_rate > 0.0 && input.annual_failure_rate < 1.0) {
        return Err(DurabilityError::Invalid(
            "the annual failure rate must be in (0, 1)".into(),
        ));
    }
    if !(input.rebuild_hours > 0.0 && input.rebuild_hours.is_finite()) {
        return Err(DurabilityError::Invalid(
            "the rebuild time must be positive".into(),
        ));
    }
    let failure_per_hour = -(1.0 - input.annual_failure_rate).ln() / HOURS_PER_YEAR;
    let chain = Chain::new(input, failure_per_hour);
    let stripe_loss = chain.loss_probability_by(HOURS_PER_YEAR);
    let mttdl_hours = chain.mean_time_to_loss_hours();
    let groups = binomial(input.nodes, total);
    // 1 − (1 − p)^G, computed without cancellation for tiny p.
    let cluster_loss = -((groups * (-stripe_loss).ln_1p()).exp_m1());
    Ok(DurabilityReport {
        stripe_annual_loss_probability: stripe_loss,
        stripe_nines: nines(stripe_loss),
        stripe_mttdl_years: mttdl_hours / HOURS_PER_YEAR,
        placement_groups: groups,
        cluster_annual_loss_probability: cluster_loss,
        cluster_nines: nines(cluster_loss),
    })
}

fn nines(probability: f64) -> f64 {
    if probability <= 0.0 {
        f64::INFINITY
    } else {
        -probability.log10()
    }
}

/// C(n, r) as a float (exact for the sizes used here, then rounded).
fn binomial(n: u32, r: u32) -> f64 {
    let r = r.min(n - r);
    (0..r).fold(1.0, |product, i| {
        product * f64::from(n - i) / f64::from(i + 1)
    })
}

/// The birth–death chain of one stripe: states 0..=m+1, state m+1 absorbing.
struct Chain {
    /// `up[i]`: rate from i to i+1 (i in 0..=m).
    up: Vec<f64>,
    /// `down[i]`: rate from i to i−1 (i in 0..=m; down[0] = 0).
    down: Vec<f64>,
}

impl Chain {
    fn new(input: &DurabilityInput, failure_per_hour: f64) -> Chain {
        let total = f64::from(input.data_shards + input.parity_shards);
        let states = input.parity_shards as usize + 1;
        let up = (0..states)
            .map(|lost| (total - lost as f64) * failure_per_hour)
            .collect();
        let down = (0..states)
            .map(|lost| match (lost, input.repair) {
                (0, _) => 0.0,
                (lost, RepairModel::Parallel) => lost as f64 / input.rebuild_hours,
                (_, RepairModel::Serial) => 1.0 / input.rebuild_hours,
            })
            .collect();
        Chain { up, down }
    }

    /// P(absorbed by `hours`) from state 0, by uniformisation.
    fn loss_probability_by(&self, hours: f64) -> f64 {
        let transient = self.up.len();
        let rate = self
            .up
            .iter()
            .zip(&self.down)
            .map(|(up, down)| up + down)
            .fold(0.0, f64::max);
        let mean = rate * hours;
        // Distribution over transient states plus the absorbed mass, after n uniformised steps.
        let mut distribution = vec![0.0; transient];
        distribution[0] = 1.0;
        let mut absorbed = 0.0;
        // Poisson(n; mean) weights, computed in log space to stay finite for large means.
        let steps = (mean + 12.0 * mean.sqrt() + 50.0).ceil() as usize;
        let mut loss = 0.0;
        for step in 0..=steps {
            let log_weight = -mean + step as f64 * mean.ln() - ln_factorial(step);
            loss += log_weight.exp() * absorbed;
            // One uniformised step.
            let mut next = vec![0.0; transient];
            for state in 0..transient {
                let mass = distribution[state];
                if mass == 0.0 {
                    continue;
                }
                let up = self.up[state] / rate;
                let down = self.down[state] / rate;
                next[state] += mass * (1.0 - up - down);
                if state > 0 {
                    next[state - 1] += mass * down;
                }
                if state + 1 < transient {
                    next[state + 1] += mass * up;
                } else {
                    absorbed += mass * up;
                }
            }
            distribution = next;
        }
        // Weights past `steps` carry negligible mass; the absorbed mass only grows, so what is
        // left out would add at most that tail times `absorbed`.
        loss.min(1.0)
    }

    /// Expected hours to absorption from state 0: solves
    /// `(up_i + down_i)·T_i = 1 + up_i·T_{i+1} + down_i·T_{i−1}` with `T_{m+1} = 0`, written as
    /// `T_i = a_i + b_i·T_{i+1}` from state 0 upward.
    fn mean_time_to_loss_hours(&self) -> f64 {
        let transient = self.up.len();
        let mut a = vec![0.0; transient];
        let mut b = vec![0.0; transient];
        for state in 0..transient {
            let (up, down) = (self.up[state], self.down[state]);
            if state == 0 {
                a[0] = 1.0 / up;
                b[0] = 1.0;
            } else {
                // T_i (up + down) = 1 + up T_{i+1} + down (a_{i−1} + b_{i−1} T_i)
                let denominator = up + down - down * b[state - 1];
                a[state] = (1.0 + down * a[state - 1]) / denominator;
                b[state] = up / denominator;
            }
        }
        // Back-substitute from T_{m+1} = 0.
        let mut time = 0.0;
        for state in (0..transient).rev() {
            time = a[state] + b[state] * time;
        }
        time
    }
}

fn ln_factorial(n: usize) -> f64 {
    // Exact sum for small n, Stirling with two correction terms beyond.
    if n < 64 {
        (2..=n).map(|i| (i as f64).ln()).sum()
    } else {
        let n = n as f64;
        n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n)
            - 1.0 / (360.0 * n.powi(3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(k: u32, m: u32, nodes: u32, afr: f64, hours: f64) -> DurabilityInput {
        DurabilityInput {
            data_shards: k,
            parity_shards: m,
            nodes,
            annual_failure_rate: afr,
            rebuild_hours: hours,
            repair: RepairModel::Parallel,
        }
    }

    #[test]
    fn without_parity_and_repair_the_loss_is_any_node_failing() {
        // k+0: data is lost as soon as one of k nodes fails: 1 − (1 − AFR)^k exactly.
        let report = annual_loss(&input(4, 0, 4, 0.02, 24.0)).unwrap();
        let expected = 1.0 - 0.98f64.powi(4);
        assert!(
            (report.stripe_annual_loss_probability - expected).abs() < 1e-9,
            "{report:?}"
        );
        // MTTDL of the first of 4 exponential failures: 1 / (4 λ).
        let lambda = -(0.98f64.ln());
        assert!((report.stripe_mttdl_years - 1.0 / (4.0 * lambda)).abs() < 1e-9);
    }

    #[test]
    fn one_parity_shard_matches_the_closed_form_mttdl() {
        // For k+1 with repair rate μ: MTTDL = ((2k+1)λ + μ) / (k(k+1)λ²).
        let (k, afr, hours) = (4u32, 0.05, 48.0);
        let report = annual_loss(&input(k, 1, 10, afr, hours)).unwrap();
        let lambda = -(1.0f64 - afr).ln() / HOURS_PER_YEAR;
        let mu = 1.0 / hours;
        let k = f64::from(k);
        let closed = ((2.0 * k + 1.0) * lambda + mu) / (k * (k + 1.0) * lambda * lambda);
        let relative = (report.stripe_mttdl_years * HOURS_PER_YEAR - closed).abs() / closed;
        assert!(relative < 1e-9, "{report:?} vs {closed}");
        // With MTTDL far above a year the yearly loss is close to 1 − e^(−year/MTTDL).
        let approximate = 1.0 - (-HOURS_PER_YEAR / closed).exp();
        let relative = (report.stripe_annual_loss_probability - approximate).abs() / approximate;
        assert!(relative < 0.01, "{report:?} vs {approximate}");
    }

    #[test]
    fn more_parity_faster_repair_and_serial_repair_order_as_expected() {
        let base = annual_loss(&input(8, 4, 24, 0.02, 24.0)).unwrap();
        let less_parity = annual_loss(&input(8, 3, 24, 0.02, 24.0)).unwrap();
        let faster = annual_loss(&input(8, 4, 24, 0.02, 6.0)).unwrap();
        let mut serial_input = input(8, 4, 24, 0.02, 24.0);
        serial_input.repair = RepairModel::Serial;
        let serial = annual_loss(&serial_input).unwrap();
        assert!(
            base.stripe_nines > less_parity.stripe_nines + 2.0,
            "{base:?} {less_parity:?}"
        );
        assert!(faster.stripe_nines > base.stripe_nines + 2.0);
        assert!(serial.stripe_nines < base.stripe_nines);
        // 8+4 with 2 % AFR and a day to rebuild is far past eleven nines per stripe.
        assert!(base.stripe_nines > 11.0, "{base:?}");
        // C(24, 12) sets; the cluster figure is lower than the per-stripe one by about log10 of it.
        assert_eq!(base.placement_groups, 2_704_156.0);
        let drop = base.stripe_nines - base.cluster_nines;
        assert!((drop - 2_704_156f64.log10()).abs() < 0.01, "{base:?}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(annual_loss(&input(8, 4, 11, 0.02, 24.0)).is_err());
        assert!(annual_loss(&input(8, 4, 12, 1.5, 24.0)).is_err());
        assert!(annual_loss(&input(8, 4, 12, 0.02, 0.0)).is_err());
        assert!(annual_loss(&input(0, 4, 12, 0.02, 1.0)).is_err());
    }
}
