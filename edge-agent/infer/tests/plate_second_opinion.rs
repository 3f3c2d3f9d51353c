//! The second reader settles a read that the shipped reader finds uncertain between two valid plates, only
//! when it is sure of one itself; with the real models on real Vietnamese plate crops (vn_plates).

use common::{model_dirs, runtime, shared_dir};
use te_infer::{PlateReaderSettings, PlateRecognizer, RecognizerSettings, RgbView, Runtime};

mod common;

fn read_crop(runtime: &Runtime, name: &str, second_opinion: bool) -> te_types::PlateRead {
    let settings = RecognizerSettings {
        reader: PlateReaderSettings { second_opinion, ..Default::default() },
        ..Default::default()
    };
    let mut plates = PlateRecognizer::load(runtime, &model_dirs(), settings).expect("plates");
    let path = shared_dir().join("data/vn_plates/images").join(format!("{name}.jpg"));
    let image = image::open(&path).expect("decode crop").into_rgb8();
    plates.read_plate_picture(RgbView::of_image(&image)).expect("read")
}

/// One test: ONNX Runtime allows one environment per process at a time.
#[test]
fn the_second_reader_settles_an_uncertain_read_only_when_it_is_sure_of_one_plate() {
    let runtime = runtime();
    an_uncertain_read_that_the_second_reader_is_sure_of_is_settled(&runtime);
    an_uncertain_read_that_neither_reader_is_sure_of_stays_unreadable(&runtime);
}

fn an_uncertain_read_that_the_second_reader_is_sure_of_is_settled(runtime: &Runtime) {
    // Labelled 51F22261. The shipped reader weighs its last 1 against a 7 (51F-222.61 or 51F-222.67); the
    // second reader gives 51F-222.61 a probability of about 0.96 and the 7 about 0.02.
    let alone = read_crop(runtime, "6CarLongPlate11", false);
    assert_eq!(alone.text, None, "{alone:?}");
    assert!(alone.unreadable_reason.as_deref().is_some_and(|r| r.starts_with("uncertain between")), "{alone:?}");
    let settled = read_crop(runtime, "6CarLongPlate11", true);
    assert_eq!(settled.text.as_deref(), Some("51F-222.61"), "{settled:?}");
    assert_eq!(settled.unreadable_reason, None);
}

fn an_uncertain_read_that_neither_reader_is_sure_of_stays_unreadable(runtime: &Runtime) {
    // Labelled 51F59881: both readers' candidates (51FS-988.91, 51FS-988.71) are wrong, and the second reader
    // gives each a probability far below one in a million, so it settles nothing.
    let read = read_crop(runtime, "5CarLongPlate917", true);
    assert_eq!(read.text, None, "{read:?}");
    assert!(read.unreadable_reason.as_deref().is_some_and(|r| r.starts_with("uncertain between")), "{read:?}");
}
