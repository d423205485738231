//! What the module needs from a package manager, as a trait. The apt implementation lives in `apt.rs`; a dnf
//! one would be a second implementation chosen in `lib.rs`, with no change to the apt code or the planning.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::key::VerifiedKey;
use crate::params::Params;

/// A package as the package database records it (fully installed ones only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub version: String,
    pub held: bool,
}

/// A file the repository set-up consists of, with the contents it must have.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
    /// Binary contents are shown in diffs by size, not byte by byte.
    pub binary: bool,
}

/// A repository definition elsewhere on the node that clashes with ours.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub path: PathBuf,
    /// Why it clashes, for the message.
    pub why: String,
    /// Whether the module may delete it (a whole old list file) or only report it (the main sources list).
    pub removable: bool,
}

/// What a run reads from and does to the node's package manager. Only `refresh`, `install`, `set_hold` and
/// `remove` change the node (`wait_for_lock` comes before them); check mode calls none of those four.
pub trait Backend {
    /// Where the verified key is kept on the node (the option's value or this backend's default).
    fn keyring_path(&self, p: &Params) -> PathBuf;
    /// The keyring and the repository definition, as they must be.
    fn repo_files(&self, p: &Params, key: &VerifiedKey) -> Vec<RepoFile>;
    /// Every file `state: absent` removes.
    fn managed_paths(&self, p: &Params) -> Vec<PathBuf>;
    /// Other repository definitions for the same packages (old names, same URL).
    fn conflicts(&self, p: &Params) -> Result<Vec<Conflict>>;
    /// Installed packages among `packages`, read from the database without running the package manager.
    fn installed(&self, packages: &[String]) -> Result<BTreeMap<String, Installed>>;
    /// Waits until no other package manager holds the database lock (clear error after `timeout`).
    fn wait_for_lock(&self, timeout: Duration) -> Result<Duration>;
    /// Fetches this repository's index only.
    fn refresh(&self, p: &Params) -> Result<()>;
    /// The versions of each of `packages` this repository offers, newest first, from the index already on the
    /// node (a package it does not offer is missing from the map).
    fn offered(&self, p: &Params, packages: &[String]) -> Result<BTreeMap<String, Vec<String>>>;
    /// Installs every package at exactly `version` (upgrading or downgrading as needed).
    fn install(&self, packages: &[String], version: &str, lock_timeout: Duration) -> Result<()>;
    /// Holds (or releases) the packages so unattended upgrades leave the pinned set alone.
    fn set_hold(&self, packages: &[String], hold: bool) -> Result<()>;
    /// Removes the packages.
    fn remove(&self, packages: &[String], lock_timeout: Duration) -> Result<()>;
}
