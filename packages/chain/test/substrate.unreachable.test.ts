import { describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { Effect, Either } from "effect";
import { connectSubstrate } from "../src/index.ts";

/** The project's CLI (packages/runtime), whose `chain` command reads this package's chains. */
const COVENANT = `${import.meta.dir}/../../runtime/bin/covenant.ts`;

// A real websocket client against a port where nothing listens (no node needed).

/** A loopback port that was free a moment ago. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });

describe("an unreachable endpoint", () => {
  test("connectSubstrate fails with ChainUnavailable naming the endpoint and what went wrong", async () => {
    const endpoint = `ws://127.0.0.1:${await freePort()}`;
    const result = await Effect.runPromise(Effect.either(Effect.scoped(connectSubstrate(endpoint, { connectTimeoutMs: 10_000 }))));
    const error = Either.isLeft(result) ? result.left : undefined;
    expect(error?._tag).toBe("ChainUnavailable");
    const reason = error?._tag === "ChainUnavailable" ? error.reason : "";
    expect(reason).toContain(`cannot connect to ${endpoint}`);
    expect(reason).not.toContain("[object");
    expect(reason.length).toBeGreaterThan(`cannot connect to ${endpoint}: `.length);
  }, 20_000);

  test("the CLI prints a readable ChainUnavailable and exits 1", async () => {
    const endpoint = `ws://127.0.0.1:${await freePort()}`;
    const cli = Bun.spawn(["bun", COVENANT, "chain", "metagraph", "--endpoint", endpoint, "--netuid", "77"], { stdout: "pipe", stderr: "pipe" });
    const [code, out, err] = await Promise.all([cli.exited, new Response(cli.stdout).text(), new Response(cli.stderr).text()]);
    expect(code).toBe(1);
    expect(out).not.toContain("uids");
    const line = err.split("\n").find((l) => l.startsWith("chain: ChainUnavailable")) ?? "";
    expect(line).toContain(`cannot connect to ${endpoint}`);
    expect(line).not.toContain("[object");
  }, 30_000);
});
