//! dvms-placement: the placement solver (placeholder until its issue lands).
