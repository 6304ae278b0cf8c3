// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
//
// Find libpcihole with pkg-config (set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig for
// an installed prefix that is not a system one), and compile csrc/abi_probe.c, a
// few lines of C that report the C side's struct sizes, offsets and ioctl numbers
// so `cargo test` can compare them with the hand-written Rust mirrors.
//
// Only std and the pkg-config crate: the C compiler is run directly (CC, default
// "cc"; AR, default "ar"), because the cc crate is not needed for one file.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn run(cmd: &mut Command) {
    let shown = format!("{:?}", cmd);
    match cmd.status() {
        Ok(st) if st.success() => {}
        Ok(st) => panic!("`{}` failed: {}", shown, st),
        Err(e) => panic!("cannot run `{}`: {}", shown, e),
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/abi_probe.c");
    for v in ["CC", "AR", "CFLAGS", "PKG_CONFIG_PATH", "PCIHOLE_NO_RPATH"] {
        println!("cargo:rerun-if-env-changed={}", v);
    }

    let lib = match pkg_config::Config::new()
        .atleast_version("0.1")
        .probe("libpcihole")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "\n\nlibpcihole not found by pkg-config: {}\n\
             Install it (cmake --install BUILD --prefix PREFIX) and set\n\
             PKG_CONFIG_PATH=PREFIX/lib/pkgconfig (or the multiarch libdir).\n\n",
            e
        ),
    };

    // A prefix outside the linker's default path: record it as the run path too,
    // so `cargo run` / `cargo test` work without LD_LIBRARY_PATH.
    if env::var_os("PCIHOLE_NO_RPATH").is_none() {
        for p in &lib.link_paths {
            let s = p.to_string_lossy();
            if !(s.starts_with("/usr/lib") || s.starts_with("/lib")) {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{}", s);
            }
        }
    }

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let ar = env::var("AR").unwrap_or_else(|_| "ar".into());
    let obj = out.join("abi_probe.o");
    let mut c = Command::new(&cc);
    c.arg("-c").arg("-O0").arg("-fPIC").arg("-std=gnu11");
    for p in &lib.include_paths {
        c.arg("-I").arg(p);
    }
    c.arg("csrc/abi_probe.c").arg("-o").arg(&obj);
    run(&mut c);
    let archive = out.join("libpcihole_abi_probe.a");
    let _ = std::fs::remove_file(&archive);
    run(Command::new(&ar).arg("crs").arg(&archive).arg(&obj));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=pcihole_abi_probe");
}
