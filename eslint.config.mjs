// Lint runs in `npm test`: the recommended TypeScript rules, without type information (fast on 2 cores), and the
// layer rule of docs/architecture.md: a layer imports only from the layers below it.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// Lowest first. Each folder may import from the folders before it in this list, never from the ones after it.
const LAYERS = ["frame", "can-db", "host", "hil", "cli"];

/** A no-restricted-imports rule for the files of one layer: every import path through a higher layer's folder is an error. */
function layerRule(layer) {
  const higher = LAYERS.slice(LAYERS.indexOf(layer) + 1);
  return {
    files: [`${layer}/**/*.ts`],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{
          regex: `(^|/)(${higher.join("|")})(/|$)`,
          message: `${layer}/ is below ${higher.join(", ")}/ (docs/architecture.md): move the shared code down instead of importing upward.`,
        }],
      }],
    },
  };
}

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "firmware/**", "test/fixtures/**", "**/*.js", "**/*.cjs", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
  ...LAYERS.slice(0, -1).map(layerRule),
  {
    // Inside host/: the protocol client talks to any gateway through a broker; it never needs the simulator.
    files: ["host/gateway/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{ regex: "(^|/)(simulator|hil|cli)(/|$)", message: "host/gateway/ (the protocol client) must not depend on the simulator or anything above host/ (docs/architecture.md)." }],
      }],
    },
  },
  {
    // The `socketcan` package is the SocketCAN fallback (host/bus/socketcan-addon.ts) and a reference in the SocketCAN
    // suite and the receive benchmark; nothing else opens sockets through it. (no-restricted-syntax, not
    // no-restricted-imports: that rule is taken by the layers above, and the package is loaded with require.)
    files: ["**/*.ts"],
    ignores: ["host/bus/socketcan-addon.ts", "test/socketcan/vm-bus-checks.ts", "bench/socketcan-rx-addon.ts"],
    rules: {
      "no-restricted-syntax": ["error",
        { selector: "ImportDeclaration[source.value='socketcan']", message: "only host/bus/socketcan-addon.ts uses the socketcan package" },
        { selector: "CallExpression[callee.name='require'][arguments.0.value='socketcan']", message: "only host/bus/socketcan-addon.ts uses the socketcan package" },
      ],
    },
  },
);
