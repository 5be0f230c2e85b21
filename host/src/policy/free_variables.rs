//! The free variables of a CEL expression: identifiers not bound by a
//! comprehension (`exists`, `all`, `map`, `filter`…). Used at load time to
//! refuse rules that read variables the policy engine never provides.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};

/// Free variables of `expr`, in first-seen order, without duplicates.
pub fn free_variables(expr: &IdedExpr) -> Vec<String> {
    let mut found = Vec::new();
    walk(expr, &mut Vec::new(), &mut found);
    found
}

fn walk<'a>(expr: &'a IdedExpr, bound: &mut Vec<&'a str>, found: &mut Vec<String>) {
    match &expr.expr {
        Expr::Unspecified | Expr::Literal(_) => {}
        Expr::Ident(name) => {
            // `@`-prefixed names are the parser's internal accumulators.
            if !name.starts_with('@') && !bound.contains(&name.as_str()) && !found.contains(name) {
                found.push(name.clone());
            }
        }
        Expr::Select(select) => walk(&select.operand, bound, found),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                walk(target, bound, found);
            }
            call.args.iter().for_each(|arg| walk(arg, bound, found));
        }
        Expr::List(list) => list.elements.iter().for_each(|e| walk(e, bound, found)),
        Expr::Map(map) => map.entries.iter().for_each(|e| entry(&e.expr, bound, found)),
        Expr::Struct(s) => s.entries.iter().for_each(|e| entry(&e.expr, bound, found)),
        Expr::Comprehension(c) => {
            walk(&c.iter_range, bound, found);
            walk(&c.accu_init, bound, found);
            let depth = bound.len();
            bound.push(&c.iter_var);
            if let Some(second) = &c.iter_var2 {
                bound.push(second);
            }
            bound.push(&c.accu_var);
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                walk(part, bound, found);
            }
            bound.truncate(depth);
        }
    }
}

fn entry<'a>(entry: &'a EntryExpr, bound: &mut Vec<&'a str>, found: &mut Vec<String>) {
    match entry {
        EntryExpr::StructField(field) => walk(&field.value, bound, found),
        EntryExpr::MapEntry(pair) => {
            walk(&pair.key, bound, found);
            walk(&pair.value, bound, found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::free_variables;

    fn free(source: &str) -> Vec<String> {
        free_variables(cel::Env::stdlib().compile(source).unwrap().expression())
    }

    #[test]
    fn finds_free_and_skips_bound_variables() {
        assert_eq!(free("args.budget > 5 && principal.tenant == 'x'"), ["args", "principal"]);
        assert_eq!(free("principal.roles.exists(r, r.startsWith('ops-'))"), ["principal"]);
        assert_eq!(free("args.items.all(i, i.price < limit)"), ["args", "limit"]);
        assert_eq!(free("[1, 2].map(x, x + y)"), ["y"]);
        assert_eq!(free("{'k': secret}['k']"), ["secret"]);
    }
}
