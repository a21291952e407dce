export * from './keys';
export * from './aesGcm';
export * from './converter';
export { startCodecServer, type CodecServer, type CodecServerOptions } from './server';
