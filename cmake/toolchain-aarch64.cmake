# Cross build for arm64 (AArch64 Linux) with Debian's cross toolchain.
#
#   apt-get install gcc-aarch64-linux-gnu qemu-user-static
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install libcmocka-dev:arm64          # only for the tests
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake -S . -B build-arm64
#   cmake --build build-arm64
#
# Examples are x86 VMMs: configure with -DPCIHOLE_EXAMPLES=OFF.
# ctest runs the test binaries through qemu-aarch64-static
# (CMAKE_CROSSCOMPILING_EMULATOR; binfmt_misc is not needed): `ctest -L unit`.
# libc6:arm64 (pulled in by libcmocka-dev:arm64) puts the arm64 loader and
# libraries at their multiarch paths, so qemu-user needs no QEMU_LD_PREFIX.
# Under qemu-user the KVM tests skip (it does not forward KVM ioctls).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(PCIHOLE_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${PCIHOLE_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${PCIHOLE_CROSS_TRIPLE}-g++)

# Host programs (cmake, sh) from the build machine; libraries, headers and
# CMake packages only from the arm64 side.
set(CMAKE_FIND_ROOT_PATH /usr/${PCIHOLE_CROSS_TRIPLE} /usr/lib/${PCIHOLE_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must see only the arm64 .pc files (libcmocka-dev:arm64), never
# the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${PCIHOLE_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

find_program(PCIHOLE_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(PCIHOLE_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${PCIHOLE_QEMU_AARCH64})
endif()
