//! The table of settings: what [`settings!`] makes of
//! [`sections`](super::sections), and what each entry knows — its key in the
//! config file, its flag and environment variable, its default, bounds and
//! documentation, and how to read and write its value on a
//! [`HostConfig`](super::HostConfig).

use super::HostConfig;
use super::codec::Codec;

/// One setting.
pub struct Setting {
    /// Its path in the config file: `section.name` (with a unit suffix
    /// such as `_ms` where the value has one).
    pub key: String,
    /// Its `serve` flag, without the dashes.
    pub flag: String,
    /// Its environment variable.
    pub env: String,
    /// The flag and the variable say the opposite of the value (`--no-watch`).
    pub negated: bool,
    /// The value is a comma-separated list (the flag may repeat).
    pub list: bool,
    /// The value is true or false (its flag takes no value).
    pub boolean: bool,
    /// What it does.
    pub doc: String,
    /// Its default, as written in a file.
    pub default: &'static str,
    /// Inclusive bounds of a number.
    pub range: Option<(u64, u64)>,
    /// Shown redacted by `config print`.
    pub secret: bool,
    set: fn(&mut HostConfig, &str) -> Result<(), String>,
    get: fn(&HostConfig) -> String,
}

impl Setting {
    /// An entry for `section.name` of type `T` written with codec `C`.
    #[doc(hidden)]
    pub fn new<T, C: Codec<T>>(
        section: &str,
        name: &str,
        doc: &[&str],
        default: &'static str,
        set: fn(&mut HostConfig, &str) -> Result<(), String>,
        get: fn(&HostConfig) -> String,
    ) -> Self {
        let key = format!("{section}.{name}{}", C::UNIT);
        let flag = key.replace(['.', '_'], "-");
        let env = format!("FASTMCP_{}", key.replace('.', "_").to_ascii_uppercase());
        let doc = doc.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ");
        Self {
            key,
            flag,
            env,
            negated: false,
            list: C::LIST,
            boolean: C::BOOLEAN,
            doc,
            default,
            range: None,
            secret: false,
            set,
            get,
        }
    }

    /// Bounds of a number (inclusive).
    pub fn range(mut self, min: u64, max: u64) -> Self {
        self.range = Some((min, max));
        self
    }

    /// The flag's name, when it is not derived from the key.
    pub fn flag(mut self, flag: &str) -> Self {
        self.flag = flag.to_owned();
        self
    }

    /// A flag that turns the (boolean) setting off.
    pub fn negated_flag(mut self, flag: &str) -> Self {
        self.negated = true;
        self.flag(flag)
    }

    /// The environment variable, when it is not derived from the key.
    pub fn env(mut self, env: &str) -> Self {
        self.env = env.to_owned();
        self
    }

    /// Never printed in the clear.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Set the value from its written form, within the bounds.
    pub fn set(&self, config: &mut HostConfig, raw: &str) -> Result<(), String> {
        self.check_range(raw)?;
        (self.set)(config, raw)
    }

    /// The value in `config`, written as a file would.
    pub fn get(&self, config: &HostConfig) -> String {
        (self.get)(config)
    }

    /// The value in `config`, as `config print` shows it.
    pub fn show(&self, config: &HostConfig) -> String {
        let value = self.get(config);
        if self.secret && !value.is_empty() { "<redacted>".to_owned() } else { value }
    }

    /// Whether a value is within the bounds (values built in code are
    /// checked with it too, by [`HostConfig::validate`]).
    pub fn check_range(&self, raw: &str) -> Result<(), String> {
        let Some((min, max)) = self.range else { return Ok(()) };
        match raw.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(format!("`{raw}` is outside the allowed range {min}..={max}")),
        }
    }

    /// The range as the docs write it.
    pub fn range_text(&self) -> String {
        self.range.map(|(min, max)| format!("{min}..={max}")).unwrap_or_default()
    }
}

/// Declares the sections of [`HostConfig`](super::HostConfig): for each, a
/// struct with one documented field per setting and a `Default` made from
/// the stated defaults, and [`all`](super::sections::all), the table of
/// every setting in order.
macro_rules! settings {
    ($(
        $(#[doc = $section_doc:literal])*
        $section:ident: $Section:ident {
            $(
                $(#[doc = $doc:literal])+
                $name:ident: $ty:ty = $default:literal as $codec:ident
                    $(, $(. $modifier:ident ( $($arg:expr),* ))+ )?;
            )*
        }
    )*) => {
        $(
            $(#[doc = $section_doc])*
            #[derive(Debug, Clone, PartialEq)]
            pub struct $Section {
                $( $(#[doc = $doc])+ pub $name: $ty, )*
            }

            impl Default for $Section {
                fn default() -> Self {
                    Self { $(
                        $name: <$codec as Codec<$ty>>::parse($default)
                            .expect(concat!("the default of ", stringify!($section), ".", stringify!($name))),
                    )* }
                }
            }
        )*

        /// Every setting, in the order of the sections.
        pub fn all() -> Vec<super::settings::Setting> {
            vec![ $( $(
                super::settings::Setting::new::<$ty, $codec>(
                    stringify!($section),
                    stringify!($name),
                    &[$($doc),+],
                    $default,
                    |config, raw| {
                        config.$section.$name = <$codec as Codec<$ty>>::parse(raw)?;
                        Ok(())
                    },
                    |config| <$codec as Codec<$ty>>::show(&config.$section.$name),
                ) $($(. $modifier ( $($arg),* ))+)?,
            )* )* ]
        }
    };
}
pub(crate) use settings;
