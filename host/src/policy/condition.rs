//! A rule's condition: a CEL program compiled once, and the variables it
//! reads. A call's evaluation context holds only the variables the rules
//! it evaluates read: building a variable (the arguments above all) is
//! most of a rule's cost, and most rules read one or two.

use super::free_variables::free_variables;
use cel::{Context, Env, Program};

/// The variables a rule may read, in the order of [`Variables`]' bits.
pub const RULE_VARIABLES: [&str; 5] = ["principal", "tool", "args", "request", "credential"];

/// A set of [`RULE_VARIABLES`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variables(u8);

impl Variables {
    /// Whether the set holds `name`.
    pub fn contains(self, name: &str) -> bool {
        RULE_VARIABLES.iter().position(|v| *v == name).is_some_and(|bit| self.0 & (1 << bit) != 0)
    }

    /// The set with `other`'s variables added.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    fn with(self, name: &str) -> Option<Self> {
        RULE_VARIABLES.iter().position(|v| *v == name).map(|bit| Self(self.0 | (1 << bit)))
    }
}

/// A compiled `when`.
pub struct Condition {
    program: Program,
    reads: Variables,
}

impl Condition {
    /// Compile `source`, refusing variables a rule cannot see.
    pub fn compile(env: &Env, source: &str) -> Result<Self, String> {
        let program = env.compile(source).map_err(|e| format!("invalid CEL: {e}"))?;
        let mut reads = Variables::default();
        for variable in free_variables(program.expression()) {
            reads = reads.with(&variable).ok_or_else(|| {
                format!("unknown variable `{variable}` (rules see {})", RULE_VARIABLES.join(", "))
            })?;
        }
        Ok(Self { program, reads })
    }

    /// The variables the condition reads.
    pub fn reads(&self) -> Variables {
        self.reads
    }

    /// Evaluate in `context`, which must hold [`Self::reads`].
    pub fn holds(&self, context: &Context) -> Result<bool, String> {
        match self.program.execute(context) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            // Not the value itself: it may come from the arguments.
            Ok(_) => Err("condition is not a boolean".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_knows_the_variables_it_reads() {
        let env = Env::stdlib();
        let reads = Condition::compile(&env, "tool.annotations.destructive && args.n > 1").unwrap().reads();
        assert!(reads.contains("tool") && reads.contains("args"));
        assert!(!reads.contains("principal") && !reads.contains("request") && !reads.contains("credential"));
        let bound = Condition::compile(&env, "principal.roles.exists(r, r == 'x')").unwrap().reads();
        assert!(bound.contains("principal") && !bound.contains("r"));
        assert_eq!(Condition::compile(&env, "true").unwrap().reads(), Variables::default());
        let error = Condition::compile(&env, "secrets.key == 1").err().unwrap();
        assert!(error.contains("unknown variable `secrets`"), "{error}");
    }
}
