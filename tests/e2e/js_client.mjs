#!/usr/bin/env node
// Drives the AWS SDK for JavaScript v3 S3 client for the end-to-end tests.
//
// Usage:
//   node js_client.mjs put BUCKET KEY FILE [--stream]
//   node js_client.mjs get BUCKET KEY FILE
//   node js_client.mjs list BUCKET [PREFIX]
//
// The endpoint comes from KEYLESS_S3_ENDPOINT and the credentials from the
// standard AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
// The client keeps the SDK's default checksum settings. `put --stream` sends
// the file as a stream, which the SDK uploads as an aws-chunked body with a
// trailing checksum.
//
// Prints one JSON object: the operation's result fields and `requestHeaders`,
// the headers of the last request as signed and sent.

import * as fs from 'node:fs';

import {
  GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';

const [operation, bucket, ...rest] = process.argv.slice(2);

const client = new S3Client({
  endpoint: process.env.KEYLESS_S3_ENDPOINT,
  region: process.env.AWS_REGION ?? 'us-east-1',
  forcePathStyle: true,
  maxAttempts: 1,
});

let requestHeaders = {};
client.middlewareStack.add(
  (next) => async (args) => {
    requestHeaders = { ...args.request.headers };
    return next(args);
  },
  { step: 'finalizeRequest', priority: 'low', name: 'recordRequestHeaders' },
);

async function put(key, file, mode) {
  const size = fs.statSync(file).size;
  const body = mode === '--stream' ? fs.createReadStream(file) : fs.readFileSync(file);
  const result = await client.send(new PutObjectCommand({
    Bucket: bucket, Key: key, Body: body, ContentLength: size,
  }));
  return { etag: result.ETag, checksumCRC32: result.ChecksumCRC32 };
}

async function get(key, file) {
  const result = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = await result.Body.transformToByteArray();
  fs.writeFileSync(file, bytes);
  return { etag: result.ETag, contentLength: result.ContentLength };
}

async function list(prefix) {
  const result = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return { keys: (result.Contents ?? []).map((item) => item.Key) };
}

async function main() {
  if (operation === 'put') {
    return put(...rest);
  }
  if (operation === 'get') {
    return get(...rest);
  }
  if (operation === 'list') {
    return list(...rest);
  }
  throw new Error(`unknown operation ${operation}: expected put, get or list`);
}

try {
  const result = await main();
  process.stdout.write(`${JSON.stringify({ ...result, requestHeaders })}\n`);
} catch (error) {
  const failure = {
    error: error.name,
    message: error.message,
    status: error.$metadata?.httpStatusCode,
    requestHeaders,
  };
  process.stdout.write(`${JSON.stringify(failure)}\n`);
  process.exit(1);
}
