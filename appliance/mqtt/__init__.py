"""The MQTT control plane: topic names and rules (`topics`), signed release commands
(`commands`), each node's agent (`agent`, with `events` watching the local state), and
the site broker's Mosquitto configuration (`broker`).

The broker only speeds things up: every action it carries also works by direct HTTPS
between nodes, and every command it carries is checked against the controller's
signature by the node that acts on it.
"""
