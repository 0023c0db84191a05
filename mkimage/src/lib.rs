//! mkimage: the host tool of router7-rs. It builds the disk image for the
//! apu2c4 (MBR; FAT boot partition with syslinux and one kernel per slot; root
//! slots A and B as SquashFS; ext4 `/perm`) and runs it under QEMU.
//!
//! | module | owns |
//! |---|---|
//! | [`layout`] | partition sizes and offsets, slots, disk signature, kernel command line |
//! | [`mbr`] | the partition table and boot code |
//! | [`bootfs`] | the FAT boot partition, syslinux and its configuration |
//! | [`adv`] | syslinux's one-shot boot command (trial boots) |
//! | [`rootfs`] | the root SquashFS |
//! | [`permfs`] | the ext4 `/perm` |
//! | [`services`] | the service table: ids, capabilities, manifest, passwd/group |
//! | [`binaries`] | checks on the kernel and binaries; placeholder detection |
//! | [`password`] | the router password kept on the build host |
//! | [`image`] | building an image from all of the above |
//! | [`qemu`] | running an image under QEMU |
//! | [`update`] | pushing an image to a running router, activating it, waiting for the trial's outcome; rollback on request |
//! | [`backups`] | the backup of `/perm` an update or rollback takes first: its folder, names, rotation |
#![forbid(unsafe_code)]

pub mod adv;
pub mod backups;
pub mod binaries;
pub mod bootfs;
pub mod error;
pub mod image;
pub mod layout;
pub mod mbr;
pub mod password;
pub mod permfs;
pub mod progress;
pub mod qemu;
pub mod rootfs;
pub mod services;
pub mod tools;
pub mod update;

pub use error::{Error, Result};
