//! Bifrons library.

pub mod storage;
