//! How likely a reader's per-step output makes a given text: the CTC forward algorithm, summed over every
//! alignment of the text to the steps.
//!
//! Greedy decoding keeps one alignment, which is enough to read but not to weigh two candidate plates, and two
//! readers align the same text to different steps, so their step probabilities cannot be averaged (averaged,
//! the shipped reader and its second opinion read 61% of the validation crops against 95% each). Their
//! sequence probabilities can be multiplied.

/// A reader's softmax over its classes at each step (class 0 the CTC blank), as the model gave it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepProbs {
    /// `steps x classes`, step-major.
    pub values: Vec<f32>,
    pub classes: usize,
}

/// Step probabilities are floored here before their log: a zero would make a text impossible outright, and
/// a model's softmax never gives a true zero.
const FLOOR: f32 = 1e-30;

impl StepProbs {
    /// The natural log of the probability of `text` (characters of `alphabet`, class `i + 1` for the `i`-th),
    /// over every CTC alignment. `None` when a character is outside the alphabet, the text is longer than the
    /// steps allow, or there are no steps.
    pub fn log_probability(&self, text: &str, alphabet: &[char]) -> Option<f64> {
        if self.classes == 0 || !self.values.len().is_multiple_of(self.classes) || self.values.is_empty() {
            return None;
        }
        let labels: Vec<usize> =
            text.chars().map(|c| alphabet.iter().position(|&a| a == c).map(|i| i + 1)).collect::<Option<_>>()?;
        if labels.iter().any(|&l| l >= self.classes) {
            return None;
        }
        let steps = self.values.len() / self.classes;
        // The text with a blank before, between and after its characters: 2n + 1 states.
        let mut states = vec![0usize; 2 * labels.len() + 1];
        for (i, &l) in labels.iter().enumerate() {
            states[2 * i + 1] = l;
        }
        let log_p = |t: usize, class: usize| f64::from(self.values[t * self.classes + class].max(FLOOR)).ln();
        let mut alpha = vec![f64::NEG_INFINITY; states.len()];
        alpha[0] = log_p(0, states[0]);
        if states.len() > 1 {
            alpha[1] = log_p(0, states[1]);
        }
        let mut next = alpha.clone();
        for t in 1..steps {
            for s in 0..states.len() {
                let mut a = alpha[s];
                if s >= 1 {
                    a = log_add(a, alpha[s - 1]);
                }
                // A character may follow the one before it directly, unless they are the same (CTC needs a
                // blank between repeats).
                if s >= 2 && states[s] != 0 && states[s] != states[s - 2] {
                    a = log_add(a, alpha[s - 2]);
                }
                next[s] = a + log_p(t, states[s]);
            }
            std::mem::swap(&mut alpha, &mut next);
        }
        let last = states.len() - 1;
        let total = if last >= 1 { log_add(alpha[last], alpha[last - 1]) } else { alpha[last] };
        total.is_finite().then_some(total)
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text over `alphabet` up to `max_len` characters.
    fn all_texts(alphabet: &[char], max_len: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max_len {
            last = last.iter().flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}"))).collect();
            out.extend(last.iter().cloned());
        }
        out
    }

    #[test]
    fn the_probabilities_of_every_text_sum_to_one() {
        // 3 steps, blank and two characters: every path of 3 steps collapses to exactly one text of at most
        // 3 characters, so the sequence probabilities of all such texts sum to 1.
        let alphabet = ['A', 'B'];
        let probs = StepProbs { values: vec![0.5, 0.3, 0.2, 0.1, 0.6, 0.3, 0.7, 0.1, 0.2], classes: 3 };
        let total: f64 =
            all_texts(&alphabet, 3).iter().filter_map(|t| probs.log_probability(t, &alphabet)).map(f64::exp).sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}"); // the inputs are f32
    }

    #[test]
    fn a_repeated_character_needs_a_blank_between_its_two_steps() {
        // Two steps: "AA" needs A, blank, A: three steps at least, so it is impossible.
        let alphabet = ['A'];
        let probs = StepProbs { values: vec![0.1, 0.9, 0.1, 0.9], classes: 2 };
        assert!(probs.log_probability("AA", &alphabet).is_none());
        // "A" is A A, A _, _ A: 0.81 + 0.09 + 0.09.
        let p = probs.log_probability("A", &alphabet).expect("A").exp();
        assert!((p - 0.99).abs() < 1e-6, "{p}");
    }

    #[test]
    fn a_character_outside_the_alphabet_or_no_steps_give_no_probability() {
        let alphabet = ['A'];
        let probs = StepProbs { values: vec![0.1, 0.9], classes: 2 };
        assert!(probs.log_probability("B", &alphabet).is_none());
        assert!(StepProbs::default().log_probability("A", &alphabet).is_none());
    }
}
