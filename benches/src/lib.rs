//! zerorank's benchmarks: the pieces `zr-bench` and the comparison share.
//!
//! - [`size`]: byte counts (`4K`) and the OSU list of message sizes;
//! - [`summary`]: one size's iteration times in an hdrhistogram, and their percentiles;
//! - [`compare`]: medians over rounds, ratios to the best peer, the markdown report;
//! - [`plot`]: SVG plots of a comparison;
//! - [`pattern`]: the data sent when validating, and its check;
//! - [`report`]: a record per size, as OSU-like columns, JSON or CSV, and read back.

pub mod compare;
pub mod pattern;
pub mod plot;
pub mod report;
pub mod size;
pub mod summary;
