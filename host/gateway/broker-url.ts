/**
 * One way to name a broker everywhere on the host (tail, the mqtt:// bus, the demo, tests):
 *
 *   mqtt://[user:password@]host[:port]          plain TCP (default port 1883)
 *   mqtts://[user:password@]host[:port]?ca=FILE TLS (default port 8883); `ca` names the PEM file of a private CA
 *
 * and one function that connects mqtt.js to it with a bounded wait and a clear error.
 */
import { readFileSync } from "node:fs";
import type { IClientOptions, MqttClient } from "mqtt";
import { BusError } from "../../frame/errors";

export interface BrokerAddress {
  url: string;
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  /** PEM of the CA that signed the broker's certificate (private CAs, as in tests). */
  caFile?: string;
}

export function parseBrokerUrl(text: string): BrokerAddress {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new BusError(`'${text}' is not a broker URL`, "use mqtt://host[:port] or mqtts://host[:port]?ca=ca.pem");
  }
  if (u.protocol !== "mqtt:" && u.protocol !== "mqtts:") {
    throw new BusError(`'${text}': broker URLs start with mqtt:// or mqtts://`);
  }
  const tls = u.protocol === "mqtts:";
  return {
    url: text,
    host: u.hostname,
    port: u.port ? Number(u.port) : tls ? 8883 : 1883,
    tls,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    caFile: u.searchParams.get("ca") ?? undefined,
  };
}

/** Connects (MQTT 3.1.1, clean session) and resolves once CONNACK arrived; rejects after `timeoutMs`. */
export async function connectBroker(address: BrokerAddress, extra: IClientOptions = {}, timeoutMs = 10_000): Promise<MqttClient> {
  const options: IClientOptions = {
    host: address.host,
    port: address.port,
    protocol: address.tls ? "mqtts" : "mqtt",
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: timeoutMs,
    ...extra,
  };
  if (address.username !== undefined) options.username = address.username;
  if (address.password !== undefined) options.password = address.password;
  if (address.caFile) {
    try {
      options.ca = readFileSync(address.caFile);
    } catch (e) {
      throw new BusError(`cannot read the CA file ${address.caFile}: ${(e as Error).message}`);
    }
  }
  // mqtt.js is loaded on first use: it takes about 30 ms to load, which every `vgw` command would pay otherwise.
  const { connect } = await import("mqtt");
  const client = connect(options);
  // Commands are small packets written right after other small ones (the PUBACK of a status, say): with Nagle's
  // algorithm the command would wait for the broker's delayed ACK, about 40 ms (measured: command to CAN frame
  // 45-49 ms with it). Every connection, reconnects too, goes without it.
  client.on("connect", () => (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true));
  const shown = `${address.tls ? "mqtts" : "mqtt"}://${address.host}:${address.port}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.end(true);
      reject(new BusError(`no answer from the broker at ${shown} within ${timeoutMs} ms${lastError ? `: ${lastError}` : ""}`, "is the broker running? check host, port, TLS and credentials"));
    }, timeoutMs);
    let lastError = "";
    client.on("error", (e) => {
      lastError = e.message;
      // Refused credentials will not get better by retrying.
      if (/Not authorized|Bad username|bad user name/i.test(e.message)) {
        clearTimeout(timer);
        client.end(true);
        reject(new BusError(`the broker at ${shown} refused the connection: ${e.message}`, "check the user name and password"));
      }
    });
    client.once("connect", () => {
      clearTimeout(timer);
      resolve(client);
    });
  });
}
