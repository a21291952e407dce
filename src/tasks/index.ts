export * from './task';
export * from './encode';
export * from './decode';
export * from './rubrics';
export * from './improve';
export * from './answer';
export * from './judge';
export * from './check';
