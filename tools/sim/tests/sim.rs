//! The simulator's integration tests (one binary; cases in modules).

mod cases;
