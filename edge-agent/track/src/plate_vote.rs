//! Plate consensus per track: every read of the track's plate votes; one vehicle pass gives one plate.
//!
//! A read weighs its reader confidence x plate detector score x a size factor (plates narrower than
//! [`FULL_WEIGHT_WIDTH`] pixels count proportionally less: small plates are where readers fail). Unreadable
//! reads vote for nothing but still count in the total, so a plate read once among many failures carries a
//! low share and the reviewer sees it.
//!
//! Each read may bring the picture of the plate it was made on: the ballot keeps it beside the vote (the vote
//! names it by SHA-256), so the record can show the reviewer every frame that voted.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use te_types::{PlateConsensus, PlateRead, PlateVote};

/// Plate width in pixels from which a read counts fully.
pub const FULL_WEIGHT_WIDTH: f32 = 120.0;

/// The reads of one track so far.
#[derive(Debug, Clone, Default)]
pub struct PlateBallot {
    votes: Vec<PlateVote>,
    /// The plate pictures the votes name, in vote order (a vote without one has none here).
    crops: Vec<Vec<u8>>,
}

impl PlateBallot {
    /// Counts `read`, made in frame `frame_number`; `crop_jpeg` is the plate as that frame showed it.
    pub fn add(&mut self, frame_number: u64, read: &PlateRead, crop_jpeg: Option<Vec<u8>>) {
        let size = (read.bbox().width() / FULL_WEIGHT_WIDTH).clamp(0.05, 1.0);
        let crop_sha256 = crop_jpeg.as_ref().map(|jpeg| hex::encode(Sha256::digest(jpeg)));
        self.crops.extend(crop_jpeg);
        self.votes.push(PlateVote {
            frame_number,
            text: read.text.clone(),
            raw: read.raw.clone(),
            confidence: read.confidence,
            weight: read.confidence * read.detector_score * size,
            crop_sha256,
        });
    }

    /// The plate pictures the votes name (what a record carrying [`PlateBallot::consensus`] must be stored with).
    pub fn crops(&self) -> &[Vec<u8>] {
        &self.crops
    }

    pub fn len(&self) -> usize {
        self.votes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.votes.is_empty()
    }

    /// The winning plate; ties go to the text read first, so the result does not depend on hash order.
    pub fn consensus(&self) -> PlateConsensus {
        let total: f32 = self.votes.iter().map(|v| v.weight).sum();
        let mut tally: HashMap<&str, (f32, usize)> = HashMap::new();
        for (i, v) in self.votes.iter().enumerate() {
            if let Some(text) = &v.text {
                let entry = tally.entry(text.as_str()).or_insert((0.0, i));
                entry.0 += v.weight;
            }
        }
        let winner = tally.into_iter().max_by(|a, b| a.1 .0.total_cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)));
        PlateConsensus {
            text: winner.map(|(text, _)| text.to_string()),
            share: match winner {
                Some((_, (weight, _))) if total > 0.0 => weight / total,
                _ => 0.0,
            },
            votes: self.votes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use te_types::PlateLayout;

    fn read(text: Option<&str>, confidence: f32, width: f32) -> PlateRead {
        PlateRead {
            text: text.map(str::to_string),
            raw: text.unwrap_or("??").to_string(),
            unreadable_reason: None,
            confidence,
            layout: PlateLayout::OneLine,
            corners: [[0.0, 0.0], [width, 0.0], [width, 30.0], [0.0, 30.0]],
            detector_score: 1.0,
        }
    }

    #[test]
    fn the_heaviest_text_wins_and_its_share_counts_every_read() {
        let mut ballot = PlateBallot::default();
        ballot.add(1, &read(Some("30A-123.45"), 0.9, 120.0), None);
        ballot.add(2, &read(Some("30A-128.45"), 0.95, 120.0), None);
        ballot.add(3, &read(Some("30A-123.45"), 0.8, 120.0), None);
        ballot.add(4, &read(None, 0.5, 120.0), None);
        let c = ballot.consensus();
        assert_eq!(c.text.as_deref(), Some("30A-123.45"));
        assert!((c.share - 1.7 / 3.15).abs() < 1e-5, "{}", c.share);
        assert_eq!(c.votes.len(), 4);
    }

    #[test]
    fn a_small_plate_counts_less_than_a_large_one() {
        let mut ballot = PlateBallot::default();
        ballot.add(1, &read(Some("30A-111.11"), 0.99, 30.0), None);
        ballot.add(2, &read(Some("30A-123.45"), 0.9, 120.0), None);
        assert_eq!(ballot.consensus().text.as_deref(), Some("30A-123.45"));
    }

    #[test]
    fn each_vote_names_its_plate_picture_and_the_ballot_keeps_it() {
        let mut ballot = PlateBallot::default();
        ballot.add(1, &read(Some("30A-123.45"), 0.9, 120.0), Some(vec![0xFF, 0xD8, 1]));
        ballot.add(2, &read(None, 0.4, 120.0), None);
        ballot.add(3, &read(Some("30A-123.45"), 0.9, 120.0), Some(vec![0xFF, 0xD8, 2]));
        let c = ballot.consensus();
        let named: Vec<_> = c.votes.iter().map(|v| v.crop_sha256.clone()).collect();
        assert_eq!(
            named,
            [
                Some(hex::encode(Sha256::digest([0xFF, 0xD8, 1]))),
                None,
                Some(hex::encode(Sha256::digest([0xFF, 0xD8, 2])))
            ]
        );
        assert_eq!(ballot.crops(), [vec![0xFF, 0xD8, 1], vec![0xFF, 0xD8, 2]]);
    }

    #[test]
    fn only_unreadable_reads_give_no_plate() {
        let mut ballot = PlateBallot::default();
        assert_eq!(ballot.consensus().text, None);
        ballot.add(1, &read(None, 0.9, 120.0), None);
        let c = ballot.consensus();
        assert_eq!((c.text, c.share), (None, 0.0));
    }
}
