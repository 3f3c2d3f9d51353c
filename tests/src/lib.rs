//! System tests live in `system/`; this crate has no library code.
