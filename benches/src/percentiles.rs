//! Percentiles of measured durations, by the nearest-rank method.

use std::time::Duration;

/// Returns the `percent` percentile of `samples` (0 < `percent` <= 100) by
/// the nearest-rank method, or `None` for no samples. Sorts `samples`.
pub fn percentile(samples: &mut [Duration], percent: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = (percent / 100.0 * samples.len() as f64).ceil() as usize;
    let index = rank.clamp(1, samples.len()) - 1;
    samples.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: &[u64]) -> Vec<Duration> {
        values
            .iter()
            .map(|&value| Duration::from_micros(value))
            .collect()
    }

    #[test]
    fn median_of_odd_count() {
        let mut samples = micros(&[5, 1, 3]);
        assert_eq!(
            percentile(&mut samples, 50.0),
            Some(Duration::from_micros(3))
        );
    }

    #[test]
    fn p99_of_hundred_samples() {
        let mut samples = micros(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(
            percentile(&mut samples, 99.0),
            Some(Duration::from_micros(99))
        );
        assert_eq!(
            percentile(&mut samples, 100.0),
            Some(Duration::from_micros(100))
        );
    }

    #[test]
    fn empty_samples_have_no_percentile() {
        assert_eq!(percentile(&mut [], 50.0), None);
    }
}
