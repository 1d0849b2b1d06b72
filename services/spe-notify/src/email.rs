//! E-mail over SMTP (lettre): plain SMTP to the configured relay, or STARTTLS when configured
//! (then required: a relay that does not offer it is an error, never a silent downgrade).

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use spe_core::config::EmailConfig;

use crate::{Message, NotifyError};

pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Mailer {
    pub(crate) fn new(config: &EmailConfig) -> Result<Mailer, NotifyError> {
        let builder = if config.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.smtp_host)
                .map_err(|e| NotifyError(format!("notifications.email.smtp_host: {e}")))?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.smtp_host)
        };
        let transport = builder
            .port(config.smtp_port)
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = config
            .from
            .parse()
            .map_err(|e| NotifyError(format!("notifications.email.from: {e}")))?;
        Ok(Mailer { transport, from })
    }

    pub(crate) async fn send(&self, to: &str, message: &Message) -> Result<(), String> {
        let to = to.parse().map_err(|e| format!("recipient address: {e}"))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(message.text())
            .map_err(|e| format!("building the e-mail: {e}"))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}
