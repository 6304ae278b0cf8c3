// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
//! libpcihole from a rust-vmm style VMM: hand-written FFI (ffi), the KVM ioctls
//! the example needs (kvm; kvm-ioctls in a real VMM), and a miniature VMM (vmm)
//! that owns its vm fd and slot ids and applies libpcihole's plan itself.

pub mod ffi;
pub mod kvm;
pub mod vmm;

mod abi;

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("this example drives an x86 guest through Linux KVM: x86_64 Linux only");
