//! A package manager in memory, standing in for apt in the run's tests: a repository offering some versions,
//! dpkg's database as a map, and a record of every call, so a test can say which methods a run called and in
//! which order. The repository files themselves are real files in a temporary folder, written by the run's own
//! code. Real apt is tested on Podman nodes by `tests/toolkit/run`; this tests the steps around it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::apt::repo_files_at;
use crate::backend::{Backend, Conflict, Installed, RepoFile};
use crate::key::VerifiedKey;
use crate::params::Params;

/// One call to the backend, with the arguments that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Conflicts,
    Installed,
    WaitForLock,
    Refresh,
    Offered,
    Install(Vec<String>, String),
    SetHold(Vec<String>, bool),
    Remove(Vec<String>),
}

impl Call {
    /// The calls that change the node (or, `WaitForLock`, that come only right before one).
    pub fn changes_the_node(&self) -> bool {
        matches!(
            self,
            Call::WaitForLock
                | Call::Refresh
                | Call::Install(..)
                | Call::SetHold(..)
                | Call::Remove(..)
        )
    }
}

pub struct FakeBackend {
    /// The node's root: `keyrings/` and `sources.list.d/` below it.
    pub root: tempfile::TempDir,
    /// Each package's versions in the repository, newest first.
    pub repository: BTreeMap<String, Vec<String>>,
    /// dpkg's database.
    pub installed: RefCell<BTreeMap<String, Installed>>,
    /// Whether the repository's index is on the node (before any refresh).
    pub index_fetched: Cell<bool>,
    /// An error every install fails with (a broken package, a full disk).
    pub install_error: Option<String>,
    /// Clashing list files to report while they exist.
    pub conflicts: Vec<Conflict>,
    calls: RefCell<Vec<Call>>,
}

impl FakeBackend {
    /// A node with nothing installed and no index, and a repository offering `versions` (newest first) of
    /// every one of `packages`.
    pub fn new(packages: &[String], versions: &[&str]) -> FakeBackend {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("keyrings")).unwrap();
        std::fs::create_dir_all(root.path().join("sources.list.d")).unwrap();
        FakeBackend {
            root,
            repository: packages
                .iter()
                .map(|p| (p.clone(), versions.iter().map(|v| v.to_string()).collect()))
                .collect(),
            installed: RefCell::new(BTreeMap::new()),
            index_fetched: Cell::new(false),
            install_error: None,
            conflicts: Vec::new(),
            calls: RefCell::new(Vec::new()),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Where this node's list file is (apt's place, under the temporary root).
    pub fn list_path(&self) -> PathBuf {
        self.path("sources.list.d/nvidia.list")
    }

    /// Every call so far, and forgets them.
    pub fn take_calls(&self) -> Vec<Call> {
        self.calls.take()
    }

    fn record(&self, call: Call) {
        self.calls.borrow_mut().push(call);
    }
}

impl Backend for FakeBackend {
    fn keyring_path(&self, p: &Params) -> PathBuf {
        p.keyring_path
            .clone()
            .unwrap_or_else(|| self.path("keyrings/nvidia.gpg"))
    }

    fn repo_files(&self, p: &Params, key: &VerifiedKey) -> Vec<RepoFile> {
        repo_files_at(self.keyring_path(p), self.list_path(), &p.repo_url, key)
    }

    fn managed_paths(&self, p: &Params) -> Vec<PathBuf> {
        vec![self.list_path(), self.keyring_path(p)]
    }

    fn conflicts(&self, _: &Params) -> Result<Vec<Conflict>> {
        self.record(Call::Conflicts);
        Ok(self
            .conflicts
            .iter()
            .filter(|c| c.path.exists())
            .cloned()
            .collect())
    }

    fn installed(&self, packages: &[String]) -> Result<BTreeMap<String, Installed>> {
        self.record(Call::Installed);
        let db = self.installed.borrow();
        Ok(packages
            .iter()
            .filter_map(|p| Some((p.clone(), db.get(p)?.clone())))
            .collect())
    }

    fn wait_for_lock(&self, _: Duration) -> Result<Duration> {
        self.record(Call::WaitForLock);
        Ok(Duration::ZERO)
    }

    fn refresh(&self, _: &Params) -> Result<()> {
        self.record(Call::Refresh);
        if !self.list_path().exists() {
            bail!("refresh without the list file in place");
        }
        self.index_fetched.set(true);
        Ok(())
    }

    fn offered(&self, _: &Params, packages: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
        self.record(Call::Offered);
        if !self.index_fetched.get() {
            return Ok(BTreeMap::new());
        }
        Ok(packages
            .iter()
            .filter_map(|p| Some((p.clone(), self.repository.get(p)?.clone())))
            .collect())
    }

    fn install(&self, packages: &[String], version: &str, _: Duration) -> Result<()> {
        self.record(Call::Install(packages.to_vec(), version.to_string()));
        if let Some(e) = &self.install_error {
            bail!("{}", e);
        }
        let mut db = self.installed.borrow_mut();
        for p in packages {
            let in_repo = self.index_fetched.get()
                && self
                    .repository
                    .get(p)
                    .is_some_and(|vs| vs.iter().any(|v| v == version));
            if !in_repo && db.get(p).map(|i| i.version.as_str()) != Some(version) {
                // apt resolves every pin before it changes anything.
                bail!("E: Version '{}' for '{}' was not found", version, p);
            }
        }
        for p in packages {
            let held = db.get(p).is_some_and(|i| i.held);
            db.insert(
                p.clone(),
                Installed {
                    version: version.to_string(),
                    held,
                },
            );
        }
        Ok(())
    }

    fn set_hold(&self, packages: &[String], hold: bool) -> Result<()> {
        self.record(Call::SetHold(packages.to_vec(), hold));
        let mut db = self.installed.borrow_mut();
        for p in packages {
            match db.get_mut(p) {
                Some(i) => i.held = hold,
                None => bail!("E: Unable to locate package {}", p),
            }
        }
        Ok(())
    }

    fn remove(&self, packages: &[String], _: Duration) -> Result<()> {
        self.record(Call::Remove(packages.to_vec()));
        let mut db = self.installed.borrow_mut();
        for p in packages {
            db.remove(p);
        }
        Ok(())
    }
}
