//! The one libvirt call the `virt` 0.5 bindings do not wrap: `virDomainAbortJob`. It is the only
//! `unsafe` code of the crate (the crate denies `unsafe_code` everywhere else).

use virt::domain::Domain;
use virt::error::Error as VirtError;

/// Asks libvirt to abort the job (a migration) running on `dom`. Safe to call from another thread
/// or connection while the migration call blocks: libvirt allows an abort during an async job.
#[allow(unsafe_code)]
pub(super) fn abort_job(dom: &Domain) -> Result<(), VirtError> {
    // SAFETY: `dom.as_ptr()` is the `virDomainPtr` that `dom` owns a reference to; `dom` is
    // borrowed for the whole call, so the pointer stays valid, and `virDomainAbortJob` neither
    // frees nor keeps it. The function is thread-safe in libvirt (public API).
    let ret = unsafe { virt::sys::virDomainAbortJob(dom.as_ptr()) };
    if ret < 0 {
        Err(VirtError::last_error())
    } else {
        Ok(())
    }
}
