//! dvmsctl
