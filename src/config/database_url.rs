//! The database URL: its Debug and Display never show the password, so neither `Config`'s
//! Debug nor a message that names the database can leak it.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password; only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with the password (in the userinfo or a `password=` parameter) replaced by
    /// `***`. A URL that does not parse shows only its scheme.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

fn redact(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        let scheme = text.split_once("://").map_or("", |(scheme, _)| scheme);
        return format!("{scheme}://***");
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query_pairs().any(|(name, _)| name == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if name == "password" {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl PartialEq<&str> for DatabaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::DatabaseUrl;

    #[test]
    fn the_password_is_never_shown() {
        let url = DatabaseUrl::new("postgres://glm:s3cret-pw@db:5432/glm_gateway");
        for shown in [format!("{url}"), format!("{url:?}"), url.redacted()] {
            assert!(!shown.contains("s3cret-pw"), "{shown}");
            assert!(shown.contains("glm:***@db:5432/glm_gateway"), "{shown}");
        }
        assert_eq!(url.expose(), "postgres://glm:s3cret-pw@db:5432/glm_gateway");
    }

    #[test]
    fn a_password_parameter_is_hidden_too() {
        let url = DatabaseUrl::new("postgres://db/glm?sslmode=require&password=s3cret-pw");
        let shown = url.to_string();
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
    }

    #[test]
    fn an_unparseable_url_shows_only_its_scheme() {
        let url = DatabaseUrl::new("postgres://glm:s3cret-pw@db:notaport/x");
        assert_eq!(url.to_string(), "postgres://***");
    }

    #[test]
    fn urls_without_a_password_are_unchanged() {
        let url = DatabaseUrl::new("sqlite:///var/lib/glm-gateway/glm-gateway.db");
        assert_eq!(
            url.to_string(),
            "sqlite:///var/lib/glm-gateway/glm-gateway.db"
        );
    }

    #[test]
    fn config_debug_hides_the_password() {
        let env = |name: &str| {
            (name == "DATABASE_URL").then(|| "postgres://glm:s3cret-pw@db/glm".to_owned())
        };
        let config = crate::config::Config::from_toml("", &env).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret-pw"));
        assert!(shown.contains("glm:***@db/glm"));
    }
}
