//! The roles this server knows and what each implies.
//!
//! Keystone's defaults, as `keystone-manage bootstrap` makes them: `admin`
//! implies `member`, `member` implies `reader` (so a user granted only `admin`
//! gets a token listing all three, and every policy check that asks for
//! `reader` is met by a `member`), and `service` implies nothing. The set is
//! fixed (vpnaas has no `role create`): the policy of every API here is written
//! against these names, and a role no policy mentions would grant nothing.
//! A role's id is its name, so `openstack role add ... member` finds it by
//! either.

/// One role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleDef {
    /// Name and id.
    pub name: &'static str,
    /// What the role is for (Keystone's `description`).
    pub description: &'static str,
    /// The roles it implies directly.
    pub implies: &'static [&'static str],
}

/// Every role, by name.
pub const ROLES: &[RoleDef] = &[
    RoleDef {
        name: "admin",
        description: "Sees and changes every project's objects and the identity of everyone",
        implies: &["member"],
    },
    RoleDef {
        name: "member",
        description: "Creates and changes the objects of its project",
        implies: &["reader"],
    },
    RoleDef {
        name: "reader",
        description: "Reads the objects of its project",
        implies: &[],
    },
    RoleDef {
        name: "service",
        description: "A service user: may validate other users' tokens",
        implies: &[],
    },
];

/// The role with this id (= name), if there is one.
pub fn find(id: &str) -> Option<&'static RoleDef> {
    ROLES.iter().find(|r| r.name == id)
}

/// Every role the `direct` grants confer, themselves and everything they
/// imply transitively, sorted and without repeats.
pub fn effective<S: AsRef<str>>(direct: &[S]) -> Vec<String> {
    let mut out: Vec<&'static str> = Vec::new();
    let mut todo: Vec<&str> = direct.iter().map(AsRef::as_ref).collect();
    while let Some(r) = todo.pop() {
        let Some(def) = find(r) else { continue };
        if !out.contains(&def.name) {
            out.push(def.name);
            todo.extend(def.implies.iter().copied());
        }
    }
    out.sort_unstable();
    out.into_iter().map(str::to_string).collect()
}

/// The roles `role` confers beyond itself, each with the role that implies
/// it directly (Keystone's `prior_role`), in implication order.
pub fn implied(role: &str) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let mut todo: Vec<&'static str> = find(role).map(|d| vec![d.name]).unwrap_or_default();
    while let Some(prior) = todo.pop() {
        for &i in find(prior).map(|d| d.implies).unwrap_or_default() {
            if !out.iter().any(|(r, _)| *r == i) {
                out.push((i, prior));
                todo.push(i);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_member_implies_reader() {
        assert_eq!(effective(&["admin"]), ["admin", "member", "reader"]);
        assert_eq!(effective(&["member"]), ["member", "reader"]);
        assert_eq!(effective(&["reader", "reader"]), ["reader"]);
        assert_eq!(effective(&["service", "nosuch"]), ["service"]);
        assert_eq!(implied("admin"), [("member", "admin"), ("reader", "member")]);
        assert!(implied("reader").is_empty());
        assert!(find("Admin").is_none());
    }
}
