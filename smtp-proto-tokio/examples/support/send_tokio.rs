//! The tokio driver's handler for the `send` example's [`Sender`], shared
//! by the example and its tests.

use smtp_proto_tokio::client::ClientHandler;
use smtp_proto_tokio::smtp_proto::client::{Client, ClientEvent};

use crate::send_app::Sender;

impl ClientHandler for Sender {
    async fn on_event(
        &mut self,
        client: &mut Client,
        event: ClientEvent<'_>,
    ) -> std::io::Result<()> {
        Sender::on_event(self, client, event)
    }

    async fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        Sender::next_body_piece(self, piece)
    }
}
