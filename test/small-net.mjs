// The small AlexNet-shaped network for 32x32 images that the training tests (test/train.test.ts)
// and the memory soak (scripts/soak.mjs) both train: conv, relu, pool, conv, relu, pool,
// flatten, linear, relu, dropout, linear. The full AlexNet is far too slow for them on a CPU.
//
// The library is passed in rather than imported: the tests use the TypeScript sources
// (../src/index.js, no build needed) and the soak the built package (../dist/index.js), and
// layers must come from the same copy of the library as the Trainer that runs them.

/**
 * @param {{ Sequential: any, Conv2d: any, ReLU: any, MaxPool2d: any, Flatten: any, Linear: any,
 *           Dropout: any, mulberry32: (seed: number) => () => number }} lib the library's exports
 * @param {number} [seed] initial weights (mulberry32) and the dropout mask stream
 * @param {number} [classes] outputs of the last layer
 * @param {number} [dropout] the Dropout layer's p
 */
export function smallNet(lib, seed = 1, classes = 2, dropout = 0.25) {
  const { Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout, mulberry32 } = lib;
  const rng = mulberry32(seed); // deterministic initial weights
  return new Sequential(
    new Conv2d(3, 16, 5, { padding: 2, rng }),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(16, 32, 3, { padding: 1, rng }),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    new Linear(32 * 8 * 8, 64, { rng }),
    new ReLU(),
    new Dropout(dropout, { seed }),
    new Linear(64, classes, { rng }),
  );
}
