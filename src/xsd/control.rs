//! CONTROL (dom0 only): `print` (to the host's log), `log` (accepted),
//! `check` (recount the tree: EIO if anything drifted), `quota` (the
//! limits, or `quota|<domid>` one domain's usage), `help`; anything else
//! is EINVAL. Not supported: live update, log files, memory reports, and
//! setting quotas (`quota|set…`: EINVAL).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::server::{ok, Host, Server};
use super::wire::{self, Args};
use super::{DomId, Errno};

const HELP: &str = "check\nhelp\nlog\nprint\nquota\n";

impl Server {
    pub(super) fn control(&mut self, dom: DomId, a: &mut Args, host: &mut dyn Host) -> Result<Vec<u8>, Errno> {
        if !self.conn(dom)?.caller().privileged() {
            return Err(Errno::EACCES);
        }
        let text = match a.text()? {
            "print" => {
                host.log(a.last_text()?);
                return Ok(ok());
            }
            "log" => return Ok(ok()),
            "check" => {
                self.audit().map_err(|_| Errno::EIO)?;
                return Ok(ok());
            }
            "help" => String::from(HELP),
            "quota" => match a.last_text()? {
                "" => self.quota_settings(),
                d => self.quota_of(wire::number(d)?),
            },
            _ => return Err(Errno::EINVAL),
        };
        let mut b = text.into_bytes();
        b.push(0);
        Ok(b)
    }

    fn quota_settings(&self) -> String {
        let c = &self.cfg;
        format!(
            "nodes {}\nnode-size {}\npath-max {}\nwatches {}\ntransactions {}\npermissions {}\ntransaction-nodes {}\noutstanding {}\nmemory {}\noutput {}\n",
            c.nodes, c.node_size, c.path.abs, c.watches, c.transactions, c.perms, c.txn_nodes, c.outstanding, c.memory, c.output
        )
    }

    fn quota_of(&self, d: DomId) -> String {
        let u = self.tree.accounts().get(d);
        let (w, t, q) = self.conns.get(&d).map_or((0, 0, 0), |c| (c.watches.len(), c.txns.len(), c.queued()));
        format!("nodes {}\nmemory {}\nwatches {w}\ntransactions {t}\noutput {q}\n", u.nodes, u.bytes)
    }
}
