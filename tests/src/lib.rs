//! dvms-integration: tests that run real `dvmsd` processes on loopback (see `agents/`), with
//! the harness of `dvms-testkit` (`tests/kit`). The library itself is empty.
