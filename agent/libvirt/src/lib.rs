//! `dvms-libvirt`: the small executable through which `dvmsd` talks to libvirt.
//!
//! `dvmsd` is a static binary and never links libvirt; when its actuator is `libvirt` it runs
//! `dvms-libvirt` as a child for each inventory and each migration, writes one JSON [`Request`]
//! on its stdin and reads one JSON [`Answer`] from its stdout. The format is documented in
//! `docs/libvirt.md` and defined in [`protocol`], which builds without libvirt
//! (`default-features = false`), so dvmsd can use the types without linking the C library.
//!
//! # Layout
//! - [`protocol`]: the versioned request and answer, their validation.
//! - [`template`]: destination URI templates (`{name}`, `{address}`).
//! - [`policy`]: the per-VM opt-out in the domain's metadata (`<dvms:policy migrate="never"/>`).
//! - [`procfs`]: QEMU's pid and cgroup from its pid file and `/proc`.
//! - `backend` (feature `libvirt`): executes a request through the `virt` bindings.
//!
//! [`Request`]: protocol::Request
//! [`Answer`]: protocol::Answer

#[cfg(feature = "libvirt")]
pub mod backend;
pub mod policy;
pub mod procfs;
pub mod protocol;
pub mod template;
