//! Paths: their syntax (xenstore.txt: ASCII alphanumerics and `-/_@`, no
//! doubled or trailing slash, not empty), the expansion of relative paths
//! under `/local/domain/<id>`, and the child relation everything else
//! (directory listings, watches, removal) is built on.

use alloc::format;
use alloc::string::String;

use super::{DomId, Errno};

/// A path from a request, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The absolute, canonical path, or the special name (`@…`) as given.
    pub abs: String,
    /// It was given relative to the caller's domain path (watch events
    /// are then reported relative too).
    pub relative: bool,
}

impl Resolved {
    /// A special watch path (`@introduceDomain`, `@releaseDomain`, …),
    /// not a node.
    pub fn is_special(&self) -> bool {
        self.abs.starts_with('@')
    }
}

/// The longest absolute and relative paths accepted (`XENSTORE_ABS_PATH_MAX`,
/// `XENSTORE_REL_PATH_MAX` by default).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub abs: usize,
    pub rel: usize,
}

/// `/local/domain/<dom>`, the base of `dom`'s relative paths.
pub fn domain_path(dom: DomId) -> String {
    format!("/local/domain/{dom}")
}

fn valid_chars(p: &str) -> bool {
    p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_@".contains(&b))
}

/// No empty component: no `//`, no trailing `/` (but `/` itself).
fn well_formed(p: &str) -> bool {
    let body = p.strip_prefix('/').unwrap_or(p);
    p == "/" || (!body.is_empty() && body.split('/').all(|c| !c.is_empty()))
}

/// Resolve a request's path for `dom`. Too long, bad characters or shape:
/// EINVAL. A relative path's length is checked before it is expanded
/// (XSA-323), then the expansion's against the absolute limit.
pub fn resolve(raw: &str, dom: DomId, lim: Limits) -> Result<Resolved, Errno> {
    if !valid_chars(raw) || !well_formed(raw) {
        return Err(Errno::EINVAL);
    }
    let (abs, relative) = if raw.starts_with('/') || raw.starts_with('@') {
        (String::from(raw), false)
    } else {
        if raw.len() > lim.rel {
            return Err(Errno::EINVAL);
        }
        (format!("{}/{raw}", domain_path(dom)), true)
    };
    if abs.len() > lim.abs {
        return Err(Errno::EINVAL);
    }
    Ok(Resolved { abs, relative })
}

/// `child` is `parent`, or lies below it (xenstore.txt's definition; the
/// root is the parent of every node path, never of a special one).
pub fn is_child(child: &str, parent: &str) -> bool {
    if parent == "/" {
        return child.starts_with('/');
    }
    child.strip_prefix(parent).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The parent of a node path other than `/`.
pub fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// The last component of a node path other than `/`.
pub fn leaf(p: &str) -> &str {
    &p[p.rfind('/').map_or(0, |i| i + 1)..]
}

/// The path of `dir`'s child `name`.
pub fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// `abs` relative to `dom`'s domain path, for watches set relative; the
/// path itself when it lies elsewhere.
pub fn relative_to(abs: &str, dom: DomId) -> &str {
    let base = domain_path(dom);
    match abs.strip_prefix(base.as_str()).and_then(|r| r.strip_prefix('/')) {
        Some(rel) if !rel.is_empty() => rel,
        _ => abs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIM: Limits = Limits { abs: 3072, rel: 2048 };

    #[test]
    fn absolute_relative_and_special() {
        assert_eq!(resolve("/a/b", 3, LIM), Ok(Resolved { abs: "/a/b".into(), relative: false }));
        assert_eq!(resolve("x/y", 3, LIM), Ok(Resolved { abs: "/local/domain/3/x/y".into(), relative: true }));
        assert!(resolve("@releaseDomain", 3, LIM).unwrap().is_special());
        assert_eq!(resolve("/", 3, LIM).unwrap().abs, "/");
    }

    #[test]
    fn malformed_paths_are_einval() {
        for p in ["", "/a/", "/a//b", "//", "a/", "/a b", "/a\u{e9}", "/a.b", "x//y"] {
            assert_eq!(resolve(p, 1, LIM), Err(Errno::EINVAL), "{p:?}");
        }
    }

    #[test]
    fn lengths_relative_before_expansion_then_absolute() {
        let rel = "a".repeat(2048);
        assert!(resolve(&rel, 1, LIM).is_ok());
        assert_eq!(resolve(&"a".repeat(2049), 1, LIM), Err(Errno::EINVAL));
        let abs = alloc::format!("/{}", "a".repeat(3071));
        assert!(resolve(&abs, 1, LIM).is_ok());
        assert_eq!(resolve(&alloc::format!("{abs}b"), 1, LIM), Err(Errno::EINVAL));
        // A relative path within its limit whose expansion is too long.
        assert_eq!(resolve(&rel, 1, Limits { abs: 2060, rel: 2048 }), Err(Errno::EINVAL));
    }

    #[test]
    fn child_parent_leaf_join() {
        assert!(is_child("/a/b", "/a") && is_child("/a", "/a") && is_child("/a", "/"));
        assert!(!is_child("/ab", "/a") && !is_child("@x", "/") && !is_child("/a", "/a/b"));
        assert!(is_child("@releaseDomain", "@releaseDomain"));
        assert_eq!((parent("/a/b"), parent("/a")), ("/a", "/"));
        assert_eq!(leaf("/a/bc"), "bc");
        assert_eq!((join("/", "a"), join("/a", "b")), ("/a".into(), "/a/b".into()));
        assert_eq!(relative_to("/local/domain/3/x/y", 3), "x/y");
        assert_eq!(relative_to("/local/domain/33/x", 3), "/local/domain/33/x");
    }
}
