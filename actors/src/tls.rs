//! The process's one TLS crypto provider: ring. Every HTTPS client the server builds (the
//! gateway's, MCP servers', the object store's) asks rustls for the process default, and
//! panics if none was installed, so [`install`] runs first thing in `startup::build`, and in
//! test and benchmark programs before their own clients.

use std::sync::Once;

/// Installs ring as rustls's default provider; safe to call any number of times.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider is already installed, which then serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn https_clients_build_on_the_installed_provider() {
        super::install();
        super::install();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        // Building a client sets up its TLS config, which panics without a provider.
        reqwest::Client::builder()
            .https_only(true)
            .build()
            .expect("an HTTPS client");
    }
}
