// The generator as a new user would set it up: the fetch client, zod
// schemas, and an SDK that validates requests and responses with them.
export default {
  input: '../../../openapi.yaml',
  output: 'gen',
  plugins: [
    '@hey-api/client-fetch',
    'zod',
    { name: '@hey-api/sdk', validator: { request: 'zod', response: 'zod' } },
  ],
};
