//! `MODEL_ALIASES`: the model a client names, mapped to one the target serves, by glob patterns
//! tried in order (`claude-sonnet-*=gpt-4.1,claude-haiku-*=gpt-4.1-mini,*=gpt-4.1`), so a tool's
//! default model names reach the company's models.

use glob::Pattern;

#[derive(Debug, Clone, Default)]
pub struct ModelAliases {
    rules: Vec<(Pattern, String)>,
}

impl ModelAliases {
    /// The model to send for `model`, when a pattern matches it and names another.
    pub fn resolve(&self, model: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|(pattern, _)| pattern.matches(model))
            .map(|(_, target)| target.as_str())
            .filter(|target| *target != model)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules as written: `pattern=model` joined by commas.
    pub fn to_setting(&self) -> String {
        self.rules
            .iter()
            .map(|(pattern, target)| format!("{}={target}", pattern.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::str::FromStr for ModelAliases {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for rule in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (pattern, target) = rule
                .split_once('=')
                .map(|(p, t)| (p.trim(), t.trim()))
                .filter(|(p, t)| !p.is_empty() && !t.is_empty())
                .ok_or_else(|| format!("{rule:?} is not pattern=model"))?;
            let pattern =
                Pattern::new(pattern).map_err(|e| format!("{pattern:?} is not a glob: {e}"))?;
            rules.push((pattern, target.to_owned()));
        }
        Ok(Self { rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_globs_tried_in_order() {
        let aliases: ModelAliases =
            "claude-sonnet-*=gpt-4.1, claude-haiku-*=gpt-4.1-mini,*=gpt-4.1"
                .parse()
                .unwrap();
        assert_eq!(aliases.resolve("claude-sonnet-4-5"), Some("gpt-4.1"));
        assert_eq!(aliases.resolve("claude-haiku-4-5"), Some("gpt-4.1-mini"));
        assert_eq!(aliases.resolve("claude-opus-4-8[1m]"), Some("gpt-4.1"));
        assert_eq!(
            aliases.resolve("gpt-4.1"),
            None,
            "already the target's name"
        );
        assert_eq!(
            aliases.to_setting(),
            "claude-sonnet-*=gpt-4.1,claude-haiku-*=gpt-4.1-mini,*=gpt-4.1"
        );
        let none: ModelAliases = "".parse().unwrap();
        assert!(none.is_empty() && none.resolve("x").is_none());
    }

    #[test]
    fn a_rule_without_a_model_or_a_bad_glob_is_refused() {
        for bad in ["claude-*", "=gpt-4.1", "claude-*=", "[=gpt"] {
            assert!(bad.parse::<ModelAliases>().is_err(), "{bad}");
        }
    }
}
