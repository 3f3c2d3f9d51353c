//! The subcommands besides `run`: each a module of its own, called from `main.rs`.

pub mod bench;
pub mod camera;
pub mod doctor;
pub mod eval;
pub mod evidence;
pub mod evidence_crash;
pub mod fuzz;
pub mod scene;
